// Tokenizers and the corpus: GPT-2 BPE against the reference encoder's ids, byte
// round-trips for every tokenizer, SentencePiece training, Brown detagging and the
// POS side files, chunked `prepare`, and the tokenizer travelling with a checkpoint.
#include <gtest/gtest.h>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/rng.h"
#include "corpus/brown.h"
#include "tokenizers/gpt2_bpe.h"
#include "formats/token_file.h"
#include "tokenizers/tokenizer.h"
#include "test_util.h"

using namespace fw;
namespace fs = std::filesystem;

namespace {
const std::string kBrown = std::string(FLOPWISE_SOURCE_DIR) + "/data/brown-src";

// Random bytes that are mostly not UTF-8, with the characters tokenizers special-case.
std::string random_bytes(uint64_t seed, size_t n) {
  Rng r(seed);
  static const std::string pieces[] = {"\xE2\x96\x81", " ", "  ", "\n", "'s", "\xF0\x9F\x98\x80", "\xC3", "\x80",
                                       std::string(1, '\0'), "\xED\xA0\x80", "a", "\t"};
  std::string s;
  while (s.size() < n) {
    if (r.uniform() < 0.3) s += pieces[size_t(r.uniform() * 12) % 12];
    else s += char(uint8_t(r.uniform() * 256));
  }
  return s;
}

// A SentencePiece model trained by `flopwise tokenizer train` on a small corpus, once.
std::string tiny_spm(const std::string& type) {
  const std::string dir = test::temp_dir("spm_" + type);
  std::ofstream text(dir + "/text.txt");
  Rng r(7);
  const char* words[] = {"the", "cat", "sat", "on", "mat", "dog", "ran", "fast", "über", "naïve", "日本", "42,", "it's"};
  for (int line = 0; line < 2000; line++) {
    for (int w = 0; w < 12; w++) text << (w ? " " : "") << words[size_t(r.uniform() * 13) % 13];
    text << "\n";
  }
  text.close();
  auto run = test::flopwise("tokenizer train --input " + dir + "/text.txt --vocab 400 --model-type " + type +
                            " --out " + dir + "/tok.model");
  EXPECT_EQ(run.code, 0) << run.out;
  return dir + "/tok.model";
}
}  // namespace

// Every vector of tests/data/gpt2_vectors.json (made by scripts/gen_gpt2_vectors.js with
// the npm package's encoder under Node): the same ids, and decoding gives the text back.
TEST(Tokenizers, Gpt2MatchesTheReferenceEncoder) {
  auto tok = make_tokenizer("gpt2");
  ASSERT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->end_of_text(), 50256);
  const auto vectors = nlohmann::json::parse(test::slurp(std::string(FLOPWISE_TEST_DATA) + "/gpt2_vectors.json"));
  ASSERT_GT(vectors.size(), 300u);
  size_t checked = 0, tokens = 0;
  for (const auto& v : vectors) {
    const std::string text = v["text"].get<std::string>();
    const auto want = v["ids"].get<std::vector<int32_t>>();
    const auto got = tok->encode(text);
    EXPECT_EQ(got, want) << "text: " << nlohmann::json(text).dump();
    EXPECT_EQ(tok->decode(got), text);
    checked++, tokens += want.size();
  }
  EXPECT_EQ(checked, vectors.size());
  EXPECT_GT(tokens, 5000u);
}

// GPT-2's pattern by hand: contractions, an optional leading space, whitespace runs
// that leave their last space to the next word.
TEST(Tokenizers, Gpt2PretokenizerSplits) {
  const auto pieces = [](const std::string& s) {
    std::vector<std::string> out;
    const auto cuts = gpt2_pretokenize(s);
    for (size_t i = 0; i < cuts.size(); i++) out.push_back(s.substr(cuts[i], (i + 1 < cuts.size() ? cuts[i + 1] : s.size()) - cuts[i]));
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces("a   b"), (V{"a", "  ", " b"}));
  EXPECT_EQ(pieces("it's 12 o'clock!!"), (V{"it", "'s", " 12", " o", "'", "clock", "!!"}));
  EXPECT_EQ(pieces("x\n\ny  "), (V{"x", "\n", "\n", "y", "  "}));
  EXPECT_EQ(pieces("\xC3(\xE4\xB8\xAD"), (V{"\xC3(", "\xE4\xB8\xAD"}));  // a stray byte is punctuation
  EXPECT_EQ(pieces(""), V{});
}

// decode(encode(s)) == s for arbitrary bytes, and token_starts tile the text, for
// every tokenizer.
TEST(Tokenizers, EveryTokenizerRoundTripsArbitraryBytes) {
  const std::string spm_bpe = tiny_spm("bpe"), spm_unigram = tiny_spm("unigram");
  for (const std::string& spec : {std::string("bytes"), std::string("gpt2"), "spm:" + spm_bpe, "spm:" + spm_unigram}) {
    auto tok = make_tokenizer(spec);
    for (uint64_t seed = 0; seed < 20; seed++) {
      const std::string s = random_bytes(seed, 50 + seed * 40);
      const auto ids = tok->encode(s);
      ASSERT_EQ(tok->decode(ids), s) << spec << " seed " << seed;
      const auto starts = tok->token_starts(ids);
      for (size_t i = 0; i < ids.size(); i++) ASSERT_EQ(s.compare(starts[i], tok->token_bytes(ids[i]).size(), tok->token_bytes(ids[i])), 0);
      for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok->vocab_size());
    }
  }
}

// SentencePiece through the CLI: train, encode/decode, prepare a data folder, and
// compression better than bytes on text like the training text.
TEST(Tokenizers, SentencePieceTrainsEncodesAndPrepares) {
  const std::string model = tiny_spm("bpe");
  auto tok = make_tokenizer("spm:" + model);
  EXPECT_LE(tok->vocab_size(), 400);
  EXPECT_GT(tok->vocab_size(), 259);
  const std::string text = "the cat sat on the mat, it's naïve 日本\n";
  const auto ids = tok->encode(text);
  EXPECT_LT(ids.size(), text.size() / 2) << "merges should compress the training vocabulary";
  EXPECT_EQ(tok->decode(ids), text);
  // flopwise encodes line by line (faster); the library on the whole text agrees
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(model).ok());
  const std::string lines = test::slurp(fs::path(model).parent_path().string() + "/text.txt").substr(0, 20000);
  std::vector<int> whole;
  ASSERT_TRUE(sp.Encode(lines, &whole).ok());
  EXPECT_EQ(tok->encode(lines), std::vector<int32_t>(whole.begin(), whole.end()));
  const std::string dir = fs::path(model).parent_path().string();
  auto p = test::flopwise("prepare --input " + dir + "/text.txt --tokenizer spm:" + model + " --out " + dir + "/data --json");
  ASSERT_EQ(p.code, 0) << p.out;
  const auto j = test::last_json_line(p.out);
  EXPECT_EQ(j["tokenizer"].get<std::string>(), "spm:" + fs::absolute(model).lexically_normal().string());
  const auto train = read_token_file(dir + "/data/train.bin");
  EXPECT_EQ(train[0], tok->end_of_text());  // each file starts a document
  EXPECT_EQ(tok->decode(train).substr(0, 100), test::slurp(dir + "/text.txt").substr(0, 100));
  // a model that normalises text is refused: it could not give the bytes back
  std::string foreign;
  ASSERT_TRUE(sentencepiece::SentencePieceTrainer::Train(
                  {{"input", dir + "/text.txt"}, {"vocab_size", "300"}, {"byte_fallback", "true"}, {"minloglevel", "2"}},
                  nullptr, &foreign)
                  .ok());
  std::ofstream(dir + "/nfkc.model", std::ios::binary) << foreign;
  auto bad = test::flopwise("tokenize --tokenizer spm:" + dir + "/nfkc.model --text hi");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("nfkc.model: this model changes text"), std::string::npos) << bad.out;
}

// `flopwise tokenize`: ids, JSON, and --decode back.
TEST(Tokenizers, TokenizeCommand) {
  auto r = test::flopwise("tokenize --tokenizer gpt2 --text 'Hello world' --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(test::last_json_line(r.out), nlohmann::json({15496, 995}));
  auto d = test::flopwise("tokenize --tokenizer gpt2 --decode --text '[15496, 995]'");
  EXPECT_EQ(d.code, 0);
  EXPECT_EQ(d.out, "Hello world");
  auto b = test::flopwise("tokenize --text 'ab'");
  EXPECT_EQ(b.out, "97 98\n");
  auto bad = test::flopwise("tokenize --tokenizer gpt2 --decode --text '1 x'");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("--text: 'x' is not a token id"), std::string::npos) << bad.out;
  auto range = test::flopwise("tokenize --tokenizer gpt2 --decode --text '50257'");
  EXPECT_NE(range.out.find("token id 50257 out of range"), std::string::npos) << range.out;
}

// Missing or malformed tokenizer files: one line naming the file (and line).
TEST(Tokenizers, BadTokenizerFilesNamed) {
  const std::string dir = test::temp_dir("tok_bad");
  auto missing = test::flopwise("tokenize --tokenizer gpt2:" + dir + " --text a");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.out.find(dir + "/encoder.json: missing"), std::string::npos) << missing.out;
  std::ofstream(dir + "/encoder.json") << "{\"a\": 0, \"b\": 1, \"ab\": 2, \"<|endoftext|>\": 3";
  std::ofstream(dir + "/vocab.bpe") << "#version: 0.2\na b\n";
  auto broken = test::flopwise("tokenize --tokenizer gpt2:" + dir + " --text a");
  EXPECT_NE(broken.out.find("encoder.json: invalid JSON"), std::string::npos) << broken.out;
  std::ofstream(dir + "/encoder.json") << "{\"a\": 1e999}";  // out of range, not malformed
  auto huge = test::flopwise("tokenize --tokenizer gpt2:" + dir + " --text a");
  EXPECT_EQ(huge.code, 1);
  EXPECT_NE(huge.out.find("encoder.json: invalid JSON"), std::string::npos) << huge.out;
  std::ofstream(dir + "/encoder.json") << "{\"a\": 0, \"b\": 1, \"ab\": 2, \"<|endoftext|>\": 3}";
  auto bytes = test::flopwise("tokenize --tokenizer gpt2:" + dir + " --text a");
  EXPECT_NE(bytes.out.find("encoder.json: no token for byte 0"), std::string::npos) << bytes.out;
  const std::string real = std::string(FLOPWISE_SOURCE_DIR) + "/data/tokenizers/gpt2";
  fs::copy_file(real + "/encoder.json", dir + "/encoder.json", fs::copy_options::overwrite_existing);
  std::ofstream(dir + "/vocab.bpe") << "#version: 0.2\nĠ t\nh e x\n";
  auto merge = test::flopwise("tokenize --tokenizer gpt2:" + dir + " --text a");
  EXPECT_NE(merge.out.find("vocab.bpe:3: expected two symbols"), std::string::npos) << merge.out;
  auto spm = test::flopwise("tokenize --tokenizer spm:" + dir + "/vocab.bpe --text a");
  EXPECT_NE(spm.out.find("vocab.bpe: not a SentencePiece model"), std::string::npos) << spm.out;
  // a model whose second piece holds a NUL byte (found by fuzz/fuzz_spm.cpp): libsentencepiece's
  // trie builder throws where nothing can catch it, so the process aborted; refused first
  const unsigned char nul_piece[] = {0x0a, 0x0e, 0x0a, 0x05, '<', 'u', 'n', 'k', '>', 0x15, 0, 0, 0, 0, 0x18, 0x02,
                                     0x0a, 0x0c, 0x0a, 0x0a, 0x00, 's', 0, 0, 0, 0x03, 0, 0, 0, 0x08, 0x30, 0x00};
  std::ofstream(dir + "/nul.model", std::ios::binary).write(reinterpret_cast<const char*>(nul_piece), sizeof nul_piece);
  test::expect_error(test::flopwise("tokenize --tokenizer spm:" + dir + "/nul.model --text a"),
                     "nul.model: not a usable SentencePiece model (piece 1 holds a NUL byte)");
  auto unknown = test::flopwise("tokenize --tokenizer wordpiece --text a");
  EXPECT_NE(unknown.out.find("unknown tokenizer 'wordpiece'"), std::string::npos) << unknown.out;
}

// Brown's tagged text back to plain text, every word's span and simplified tag.
TEST(Tokenizers, BrownDetagging) {
  PosTags tags;
  const std::string tagged =
      "\n\n\tThe/at jury/nn-tl said/vbd ``/`` no/at-hl ''/'' ,/, Jr./np ./.\n\n\n"
      "\t(/( It/pps wasn't/bedz* 1/2/cd '/' quoted/vbn '/' !/. )/)\n";
  const TaggedText t = detag_brown(tagged, tags, "sample");
  EXPECT_EQ(t.text, "The jury said \"no\", Jr.\n(It wasn't 1/2 'quoted'!)\n");
  ASSERT_EQ(t.words.size(), 17u);
  const auto word = [&](size_t i) { return t.text.substr(t.words[i].begin, t.words[i].end - t.words[i].begin); };
  const auto tag = [&](size_t i) { return tags.names()[t.words[i].tag]; };
  EXPECT_EQ(word(1), "jury");
  EXPECT_EQ(tag(1), "nn");
  EXPECT_EQ(tag(4), "at");
  EXPECT_EQ(word(10), "wasn't");
  EXPECT_EQ(tag(10), "bedz*");
  EXPECT_EQ(word(11), "1/2");
  EXPECT_EQ(tag(11), "cd");
  EXPECT_EQ(simplify_brown_tag("fw-nn-tl-hl"), "nn");
  EXPECT_EQ(simplify_brown_tag("pps+bez"), "pps+bez");
  EXPECT_THROW(detag_brown("\tword/nn orphan\n", tags, "bad"), fw::Error);
  try {
    detag_brown("\tword/nn orphan\n", tags, "bad");
  } catch (const fw::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad:1: 'orphan' is not word/tag"), std::string::npos) << e.what();
  }
  // tokens take the tag of the word their first non-space byte lies in
  const std::vector<uint32_t> starts = {0, 3, 8, 14, 15, 17};  // "The", " jury", " said", " \"", "no", ...
  const auto pos = tags_of_tokens(t, starts);
  EXPECT_EQ(tags.names()[pos[0]], "at");
  EXPECT_EQ(tags.names()[pos[1]], "nn");
  EXPECT_EQ(tags.names()[pos[3]], "``");
  EXPECT_EQ(tags.names()[pos[4]], "at");
}

// The whole corpus (fetched by scripts/fetch.sh): whole documents split 450/50, a POS
// file aligned token for token, and each GPT-2 word token tagged with its word's tag.
TEST(Tokenizers, BrownCorpusPreparedWithAlignedPosTags) {
  ASSERT_TRUE(fs::exists(kBrown + "/ca01")) << kBrown << " missing: run scripts/fetch.sh brown";
  const std::string out = test::temp_dir("brown_gpt2");
  auto r = test::flopwise("prepare --brown " + kBrown + " --tokenizer gpt2 --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto meta = nlohmann::json::parse(test::slurp(out + "/meta.json"));
  EXPECT_EQ(meta["documents"].get<int>(), 500);
  EXPECT_EQ(meta["val_documents"].size(), 50u);
  const auto names = meta["pos_tags"].get<std::vector<std::string>>();
  auto tok = make_tokenizer("gpt2");
  for (const char* part : {"train", "val"}) {
    const auto ids = read_token_file(out + "/" + part + ".bin");
    const auto pos = read_token_file(out + "/" + part + ".pos.bin");
    ASSERT_EQ(ids.size(), pos.size()) << part;
    size_t docs = 0, the = 0, the_at = 0, of = 0, of_in = 0;
    for (size_t i = 0; i < ids.size(); i++) {
      ASSERT_LT(size_t(pos[i]), names.size());
      const std::string& tag = names[size_t(pos[i])];
      if (ids[i] == tok->end_of_text()) {
        docs++;
        EXPECT_EQ(tag, "none");
        continue;
      }
      const std::string& b = tok->token_bytes(ids[i]);
      if (b == "\n") {
        EXPECT_EQ(tag, "none");
      }
      // whole words only (" the" also begins " theory"); Brown tags a few "the" np or nil
      const bool whole = i + 1 == ids.size() || !std::isalpha(uint8_t(tok->token_bytes(ids[i + 1])[0]));
      if (whole && (b == " the" || b == "The")) the++, the_at += tag == "at";
      if (whole && b == " of") of++, of_in += tag == "in";
    }
    EXPECT_EQ(docs, std::string(part) == "train" ? 450u : 50u);
    EXPECT_GT(the, std::string(part) == "train" ? 50000u : 5000u);
    EXPECT_GT(double(the_at), 0.99 * double(the)) << the_at << " of " << the;
    EXPECT_GT(double(of_in), 0.99 * double(of)) << of_in << " of " << of;
  }
  // the text written beside the tokens is what they decode to (documents blank-line separated)
  const std::string val = test::slurp(out + "/val.txt");
  const std::string decoded = tok->decode(read_token_file(out + "/val.bin"));  // <|endoftext|> decodes to ""
  EXPECT_EQ(decoded.substr(0, 2000), val.substr(0, 2000));
}

// Chunked streaming gives the same tokens as one pass: chunks end only where a cut
// changes no tokenizer's split. Input over one chunk, so several chunks are used.
TEST(Tokenizers, ChunkedPrepareEqualsOnePass) {
  const std::string dir = test::temp_dir("prepare_chunks");
  std::string text;
  Rng r(3);
  const char* words[] = {"alpha", "beta", "it's", "  ", "\n", "gamma,", "δέλτα", "😀", "\n\n", "x"};
  while (text.size() < (5u << 19)) text += std::string(words[size_t(r.uniform() * 10) % 10]) + (r.uniform() < 0.5 ? " " : "");
  std::ofstream(dir + "/big.txt") << text;
  for (const char* spec : {"gpt2", "bytes"}) {
    auto a = test::flopwise("prepare --input " + dir + "/big.txt --tokenizer " + spec + " --chunk-mib 1 --out " + dir + "/a");
    auto b = test::flopwise("prepare --input " + dir + "/big.txt --tokenizer " + spec + " --chunk-mib 64 --out " + dir + "/b");
    ASSERT_EQ(a.code, 0) << a.out;
    ASSERT_EQ(b.code, 0) << b.out;
    EXPECT_EQ(read_token_file(dir + "/a/train.bin"), read_token_file(dir + "/b/train.bin")) << spec;
    EXPECT_EQ(read_token_file(dir + "/a/val.bin"), read_token_file(dir + "/b/val.bin")) << spec;
    auto tok = make_tokenizer(spec);
    auto train = read_token_file(dir + "/a/train.bin"), val = read_token_file(dir + "/a/val.bin");
    if (tok->end_of_text() >= 0) train.erase(train.begin()), val.erase(val.begin());
    EXPECT_EQ(tok->decode(train) + tok->decode(val), text) << spec;
  }
}

// A run remembers its tokenizer: sample encodes the prompt with it, eval refuses data
// made with another, and a token file over the model's vocabulary is refused.
TEST(Tokenizers, CheckpointCarriesItsTokenizer) {
  const std::string model = tiny_spm("bpe");
  const std::string dir = test::temp_dir("tok_ckpt");
  const std::string text = fs::path(model).parent_path().string() + "/text.txt";
  ASSERT_EQ(test::flopwise("prepare --input " + text + " --tokenizer spm:" + model + " --out " + dir + "/spm").code, 0);
  ASSERT_EQ(test::flopwise("prepare --input " + text + " --out " + dir + "/bytes").code, 0);
  const std::string cfg =
      " --set model.vocab_size=400 --set model.d_model=32 --set model.n_layers=1 --set model.n_heads=2"
      " --set model.max_seq_len=32 --set train.seq_len=32 --set train.batch_size=4 --set train.steps=4"
      " --set train.warmup=1 --set train.eval_tokens=128 --set train.eval_every=4";
  auto t = test::flopwise("train --data " + dir + "/spm --out " + dir + "/run" + cfg);
  ASSERT_EQ(t.code, 0) << t.out;
  auto s = test::flopwise("sample --ckpt " + dir + "/run --prompt 'the cat' --tokens 8 --seed 1");
  ASSERT_EQ(s.code, 0) << s.out;
  EXPECT_NE(s.out.find("the cat"), std::string::npos) << s.out;
  auto e = test::flopwise("eval --ckpt " + dir + "/run --data " + dir + "/bytes");
  EXPECT_EQ(e.code, 1);
  EXPECT_NE(e.out.find("tokenized with 'bytes' but the checkpoint was trained with 'spm:"), std::string::npos) << e.out;
  auto g = test::flopwise("prepare --input " + text + " --tokenizer gpt2 --out " + dir + "/gpt2");
  ASSERT_EQ(g.code, 0) << g.out;
  auto big = test::flopwise("train --data " + dir + "/gpt2 --out " + dir + "/run2" + cfg);
  EXPECT_EQ(big.code, 1);
  EXPECT_NE(big.out.find("tokenizer 'gpt2:"), std::string::npos) << big.out;
  EXPECT_NE(big.out.find("has vocab 50257 but model.vocab_size = 400"), std::string::npos) << big.out;
}

// An installed flopwise (PREFIX/bin/flopwise) finds GPT-2's files in
// PREFIX/share/flopwise/tokenizers/gpt2 without the source tree's copy, and
// $FLOPWISE_GPT2_DIR overrides both; the data folder records the folder it used.
TEST(Tokenizers, InstalledProgramFindsGpt2Files) {
  const std::string prefix = test::temp_dir("tok_installed");
  const std::string share = prefix + "/share/flopwise/tokenizers/gpt2", other = prefix + "/elsewhere";
  fs::create_directories(prefix + "/bin");
  fs::copy_file(FLOPWISE_BIN, prefix + "/bin/flopwise");
  const std::string real = std::string(FLOPWISE_SOURCE_DIR) + "/data/tokenizers/gpt2";
  for (const std::string& dir : {share, other}) {
    fs::create_directories(dir);
    for (const char* f : {"encoder.json", "vocab.bpe"}) fs::copy_file(real + "/" + f, dir + "/" + f);
  }
  std::ofstream(prefix + "/text.txt") << "Hello world, hello tokens.\n";
  const std::string prepare = prefix + "/bin/flopwise prepare --input " + prefix + "/text.txt --tokenizer gpt2 --out ";
  auto r = test::shell("env -u FLOPWISE_GPT2_DIR " + prepare + prefix + "/a");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(test::slurp(prefix + "/a/meta.json"))["tokenizer"], "gpt2:" + share);
  r = test::shell("FLOPWISE_GPT2_DIR=" + other + " " + prepare + prefix + "/b");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(test::slurp(prefix + "/b/meta.json"))["tokenizer"], "gpt2:" + other);
}
