// Shared pieces of the subcommands: config flags, thread count, JSON summaries.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "infer/generator.h"  // KvCache
#include "nn/model.h"
#include "train/checkpoint.h"

namespace fw::cli {

struct ConfigFlags {
  std::string file;
  std::vector<std::string> sets;
  void add(CLI::App* sub);
  Config build() const;  // defaults, then the file, then each --set in order; validated
};

struct CommonFlags {
  bool json = false;
  int threads = 0;
  void add(CLI::App* sub);
  void apply() const;  // sets the thread count
};

// --precision checkpoint|fp32|bf16 of the commands that run a trained model (sample,
// serve, bench sample): the matrix products' operands. checkpoint, the default, is what
// the run trained with (train.matmul_bf16); fp32 or bf16 (bf16 operands, fp32
// accumulation) whatever it trained with. Inference reads each weight once per token,
// so bf16's half-size weights pay there even where bf16 training does not.
struct PrecisionFlag {
  std::string precision = "checkpoint";
  void add(CLI::App* sub);
  void apply(Model& model, const Config& cfg) const;  // bf16 mode on or off
};

// --kv-cache fp32|bf16 of the same commands: how the KV cache holds keys and values
// (infer/generator.h, KvCache). fp32, the default, gives the model's own numbers; bf16
// halves the bytes each decoding step reads from the cache, which under many
// concurrent sequences is most of what a step reads.
struct KvCacheFlag {
  std::string kv_cache = "fp32";
  void add(CLI::App* sub);
  KvCache value() const { return kv_cache_named(kv_cache, "--kv-cache"); }
};

// --routing calibrated|uncalibrated: how a Mixture-of-Depths model decides when sampling
// (infer/calibration.h). Calibrated, the default, uses the checkpoint's thresholds when it
// has them; uncalibrated uses the trained rule (σ > 0.5).
struct RoutingFlag {
  std::string routing = "calibrated";
  void add(CLI::App* sub);
  // Drops the model's calibration when uncalibrated was asked for; notes on stderr when a
  // Mixture-of-Depths model has none to use.
  void apply(Model& model, const std::string& ckpt) const;
};

// DIR/val.bin of a data folder for a checkpoint, checking the folder's tokenizer is the
// one the checkpoint was trained with.
std::string validation_file_for(const LoadedModel& lm, const std::string& data_dir);

// Prints `j` as one line on stdout (invalid UTF-8 in strings replaced).
void print_json(const nlohmann::json& j);

// The non-blank lines of a prompts file (--prompts FILE of sample and bench serve), one
// prompt each, with their line numbers (from 1) for messages.
struct PromptLine {
  int64_t line;
  std::string text;
};
std::vector<PromptLine> read_prompt_lines(const std::string& path);

// Progress and notes go to stderr so stdout stays the result.
void note(const std::string& line);

void register_prepare(CLI::App& app);
// `flopwise prepare --brown DIR --tokenizer SPEC --out OUT` (prepare.cpp), for the demo.
void prepare_brown(const std::string& brown_dir, const std::string& tokenizer, const std::string& out);
void register_train(CLI::App& app);
void register_eval(CLI::App& app);
void register_finetune(CLI::App& app);  // finetune (finetune.cpp)
void register_classify(CLI::App& app);  // classify (classify.cpp)
// A fine-tuned run's RUN/task.json (finetune.cpp); an empty object when it is absent
// and not required.
nlohmann::json read_task_record(const std::string& ckpt, bool required);
// eval of a fine-tuned encoder (finetune.cpp): its task's validation split, scored;
// task_spec empty: the task in RUN/task.json.
void eval_classifier(const std::string& ckpt, LoadedModel lm, const std::string& task_spec, bool json);
void register_calibrate(CLI::App& app);
void register_flops(CLI::App& app);
void register_fit(CLI::App& app);
// The tables of a law report (scaling/law_report.h) on stdout (fit.cpp).
void print_law_report(const nlohmann::json& j);
void register_plan(CLI::App& app);
void register_sweep(CLI::App& app);
void add_bench_fff(CLI::App* bench);  // flopwise bench fff (bench_fff.cpp)
void add_bench_serve(CLI::App* bench);  // flopwise bench serve (bench_serve.cpp)
void register_sample(CLI::App& app);
void register_serve(CLI::App& app);  // serve (serve.cpp)
void register_bench(CLI::App& app);
void register_tokenize(CLI::App& app);  // tokenize, tokenizer train (tokenize.cpp)
void register_report(CLI::App& app);
void register_demo(CLI::App& app);
void add_bench_tokenizer(CLI::App* bench);  // flopwise bench tokenizer (tokenize.cpp)

}  // namespace fw::cli
