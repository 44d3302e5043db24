#include "tokenizers/spm_tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/files.h"
#include "formats/atomic_file.h"
#include "tokenizers/utf8.h"

namespace fw {

namespace {
// U+2581 "▁", which SentencePiece writes for a space.
constexpr char kSpaceMark[] = "\xE2\x96\x81";

// Protocol Buffers' wire format, as much of it as finding the pieces takes: a varint at
// p (false past end or when longer than 10 bytes).
bool read_varint(const std::string& b, size_t& p, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 70 && p < b.size(); shift += 7) {
    const uint8_t c = uint8_t(b[p++]);
    v |= uint64_t(c & 0x7f) << shift;
    if (!(c & 0x80)) return true;
  }
  return false;
}

// Calls f(field, bytes) for each length-delimited field of the message in b, skipping the
// others; false when b is not a well-formed message (groups included, which models never use).
template <typename F>
bool for_each_bytes_field(const std::string& b, F&& f) {
  for (size_t p = 0; p < b.size();) {
    uint64_t key = 0, n = 0;
    if (!read_varint(b, p, key)) return false;
    switch (key & 7) {
      case 0: if (!read_varint(b, p, n)) return false; break;
      case 1: if ((p += 8) > b.size()) return false; break;
      case 5: if ((p += 4) > b.size()) return false; break;
      case 2:
        if (!read_varint(b, p, n) || n > b.size() - p) return false;
        f(key >> 3, b.substr(p, size_t(n)));
        p += size_t(n);
        break;
      default: return false;
    }
  }
  return true;
}

// SentencePiece builds a trie of the pieces (Darts), which throws from inside the library
// on a piece that is empty or holds a NUL byte, where no caller can catch it: the process
// aborts. Such a model is refused first: the pieces are ModelProto's field 1 (repeated
// SentencePiece), each piece its field 1. "" when every piece is fine or the file is not a
// well-formed message (SentencePiece's own parser then says what is wrong).
std::string bad_piece(const std::string& model) {
  std::string problem;
  int64_t index = 0;
  for_each_bytes_field(model, [&](uint64_t field, const std::string& piece_msg) {
    if (field != 1) return;
    for_each_bytes_field(piece_msg, [&](uint64_t f, const std::string& piece) {
      if (f != 1 || !problem.empty()) return;
      if (piece.empty()) problem = str("piece ", index, " is empty");
      else if (piece.find('\0') != std::string::npos) problem = str("piece ", index, " holds a NUL byte");
    });
    index++;
  });
  return problem;
}

}  // namespace

SpmTokenizer::SpmTokenizer(const std::string& model_path)
    : path_(model_path), sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  const std::string bytes = read_file(model_path, "SentencePiece model");
  const std::string bad = bad_piece(bytes);
  FW_CHECK(bad.empty(), model_path, ": not a usable SentencePiece model (", bad, ")");
  const auto st = sp_->LoadFromSerializedProto(bytes);
  FW_CHECK(st.ok(), model_path, ": not a SentencePiece model (", st.ToString(), ")");
  const int n = sp_->GetPieceSize();
  bytes_of_.resize(size_t(n));
  for (int b = 0; b < 256; b++) byte_piece_[b] = -1;
  for (int id = 0; id < n; id++) {
    const std::string& piece = sp_->IdToPiece(id);
    if (sp_->IsByte(id)) {  // "<0xNN>"
      const int b = std::stoi(piece.substr(3, 2), nullptr, 16);
      bytes_of_[size_t(id)] = std::string(1, char(b));
      byte_piece_[b] = id;
    } else if (sp_->IsControl(id) || sp_->IsUnknown(id)) {
      bytes_of_[size_t(id)] = "";
    } else {
      std::string s;
      for (size_t i = 0; i < piece.size();) {
        if (piece.compare(i, 3, kSpaceMark) == 0) s += ' ', i += 3;
        else s += piece[i++];
      }
      bytes_of_[size_t(id)] = s;
      if (s.find('\n') != std::string::npos && s != "\n") lines_independent_ = false;
    }
  }
  eos_ = sp_->eos_id();
  for (int b = 0; b < 256; b++)
    FW_CHECK(byte_piece_[b] >= 0, model_path,
             ": no byte-fallback pieces, so some bytes cannot be encoded (train it with `flopwise tokenizer train`)");
  // A probe with what normalisation, dummy prefixes and whitespace folding would change.
  const std::string probe = " a  b\t\xEF\xAC\x81 \xEF\xBC\xA1\n";  // ﬁ ligature, fullwidth A
  FW_CHECK(decode(encode(probe)) == probe, model_path,
           ": this model changes text (normalisation, a dummy prefix or whitespace folding), so it is not exact "
           "on bytes; train one with `flopwise tokenizer train`");
}

SpmTokenizer::~SpmTokenizer() = default;

const std::string& SpmTokenizer::token_bytes(int32_t id) const {
  FW_CHECK(id >= 0 && id < vocab_size(), "spm tokenizer: token id ", id, " out of range [0, ", vocab_size(), ")");
  return bytes_of_[size_t(id)];
}

std::vector<int32_t> SpmTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  std::vector<int> part;
  size_t run = 0;  // start of the current run of text SentencePiece can take as it is
  const auto flush = [&](size_t end) {
    if (end > run) {
      const auto st = sp_->Encode(std::string_view(text.data() + run, end - run), &part);
      FW_CHECK(st.ok(), path_, ": encoding failed (", st.ToString(), ")");
      for (int id : part) {
        FW_CHECK(!sp_->IsUnknown(id), path_, ": produced <unk>; the model cannot represent this text");
        ids.push_back(id);
      }
    }
  };
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const size_t n = utf8_decode(text, i, cp);
    // SentencePiece must not see: malformed bytes, NUL (it stops there), its own "▁"
    if (n > 0 && cp != 0 && cp != 0x2581) {
      i += n;
      // with no piece spanning a newline, lines encode independently, and SentencePiece's
      // BPE is 3.5x faster on lines than on a whole text (measured on Brown)
      if (cp == '\n' && lines_independent_) flush(i), run = i;
      continue;
    }
    flush(i);
    const size_t len = n > 0 ? n : 1;
    for (size_t k = 0; k < len; k++) ids.push_back(byte_piece_[uint8_t(text[i + k])]);
    i += len;
    run = i;
  }
  flush(text.size());
  return ids;
}

void train_spm(const SpmTrainOptions& o) {
  FW_CHECK(!o.inputs.empty(), "tokenizer train: no --input files");
  std::string inputs;
  for (const auto& f : o.inputs) {
    require_readable_file(f, "input file");
    FW_CHECK(f.find(',') == std::string::npos, f, ": SentencePiece takes input lists with commas; rename the file");
    inputs += (inputs.empty() ? "" : ",") + f;
  }
  FW_CHECK(o.model_type == "bpe" || o.model_type == "unigram", "--model-type '", o.model_type,
           "': must be bpe or unigram");
  FW_CHECK(o.vocab_size >= 300 && o.vocab_size <= 1000000, "--vocab ", o.vocab_size,
           ": must be at least 300 (256 byte pieces, 3 control pieces and some merges)");
  FW_CHECK(!o.out.empty(), "tokenizer train: --out is required");
  std::string model;
  const std::unordered_map<std::string, std::string> args = {
      {"input", inputs},
      {"model_type", o.model_type},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"normalization_rule_name", "identity"},  // exact on bytes: keep text as it is
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      {"byte_fallback", "true"},
      {"character_coverage", "0.9995"},
      {"allow_whitespace_only_pieces", "true"},
      {"split_digits", "true"},
      {"hard_vocab_limit", "false"},  // a tiny corpus may not have vocab_size pieces
      {"max_sentence_length", "16384"},
      {"input_sentence_size", "2000000"},
      {"shuffle_input_sentence", "true"},
      {"num_threads", "2"},
      {"minloglevel", "1"},
  };
  const auto st = sentencepiece::SentencePieceTrainer::Train(args, nullptr, &model);
  FW_CHECK(st.ok(), "tokenizer train: SentencePiece failed: ", st.ToString());
  if (const auto dir = std::filesystem::path(o.out).parent_path(); !dir.empty())
    std::filesystem::create_directories(dir);
  write_file_atomic(o.out, model);
}

}  // namespace fw
