// The library without the CLI: tokenize a text, train a tiny model on it, sample.
//   build/examples/train_and_sample WORK_DIR
#include <flopwise/data.h>
#include <flopwise/error.h>
#include <flopwise/model.h>
#include <flopwise/sample.h>
#include <flopwise/train.h>

#include <cstdio>
#include <filesystem>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  try {
    std::filesystem::create_directories(dir + "/data");
    fw::ByteTokenizer tok;
    std::string text;
    for (int i = 0; i < 50; i++) text += "flopwise spends compute where it matters. ";
    std::vector<int32_t> ids = tok.encode(text);
    fw::write_token_file(dir + "/data/train.bin", ids);
    fw::write_token_file(dir + "/data/val.bin", std::vector<int32_t>(ids.begin(), ids.begin() + 300));

    fw::Config cfg;
    for (const char* s : {"model.d_model=32", "model.n_heads=2", "model.n_layers=2", "model.max_seq_len=32",
                          "train.seq_len=32", "train.batch_size=4", "train.steps=150", "train.lr=1e-2",
                          "train.warmup=10", "train.eval_every=0", "train.eval_tokens=256"})
      fw::apply_set(cfg, s);
    std::filesystem::remove_all(dir + "/run");
    fw::TrainOptions opt;
    opt.data_dir = dir + "/data";
    opt.run_dir = dir + "/run";
    fw::TrainSummary s = fw::run_training(cfg, opt);
    std::printf("trained %lld steps: train loss %.3f, val loss %.3f\n", (long long)s.step, s.train_loss, s.val_loss);

    fw::LoadedModel lm = fw::load_model(opt.run_dir);
    fw::Generator gen(*lm.model, lm.config.model.max_seq_len);
    fw::GenerateResult r = fw::generate(gen, tok.encode("flopwise "), 40, {0.0, 0, 1.0}, 1);
    std::printf("flopwise %s\n", tok.decode(r.tokens).c_str());
    return s.val_loss < 0.5 ? 0 : 1;  // the sentence is easy: a working engine learns it
  } catch (const fw::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
