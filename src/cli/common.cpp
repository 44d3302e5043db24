#include "cli/common.h"

#include <cstdio>
#include <fstream>
#include <iostream>

#include "core/error.h"
#include "core/threads.h"
#include "formats/token_file.h"

namespace fw::cli {

void ConfigFlags::add(CLI::App* sub) {
  sub->add_option("--config", file, "JSON config file (sections: model, train)");
  sub->add_option("--set", sets, "override one field: section.key=value (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

Config ConfigFlags::build() const {
  Config c;
  if (!file.empty()) apply_config_file(c, file);
  for (const auto& s : sets) apply_set(c, s);
  c.validate();
  return c;
}

void CommonFlags::add(CLI::App* sub) {
  sub->add_flag("--json", json, "print a one-line JSON summary as the last stdout line");
  sub->add_option("--threads", threads, "OpenMP/oneDNN threads (default: all cores)");
}

void CommonFlags::apply() const { set_num_threads(threads); }

void PrecisionFlag::add(CLI::App* sub) {
  sub->add_option("--precision", precision,
                  "matrix products: checkpoint (as the run trained, train.matmul_bf16), fp32, or bf16 (fp32 "
                  "accumulation)")
      ->check(CLI::IsMember({"checkpoint", "fp32", "bf16"}));
}

void PrecisionFlag::apply(Model& model, const Config& cfg) const {
  model.set_matmul_bf16(precision == "checkpoint" ? cfg.train.bf16() : precision == "bf16");
}

void KvCacheFlag::add(CLI::App* sub) {
  sub->add_option("--kv-cache", kv_cache,
                  "KV cache precision: fp32 (the model's own numbers) or bf16 (keys and values rounded as "
                  "cached: half the bytes a decoding step reads)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
}

void RoutingFlag::add(CLI::App* sub) {
  sub->add_option("--routing", routing,
                  "Mixture-of-Depths sampling: calibrated (the checkpoint's thresholds, processing the "
                  "capacity's share) or uncalibrated (the trained rule, sigma(r) > 0.5)")
      ->check(CLI::IsMember({"calibrated", "uncalibrated"}));
}

void RoutingFlag::apply(Model& model, const std::string& ckpt) const {
  if (!model.cfg.mod.enabled) return;
  if (routing == "uncalibrated") model.calibration = {};
  else if (model.calibration.empty())
    note(str(ckpt, ": not calibrated (trained before calibration existed, or stopped early); routing by the "
             "trained rule. `flopwise calibrate --ckpt ", ckpt, " --data DIR` calibrates it"));
}

std::string validation_file_for(const LoadedModel& lm, const std::string& data_dir) {
  const DataFiles files = find_data_files(data_dir);
  const std::string data_tok = data_folder_tokenizer(data_dir, lm.config.model.vocab_size, lm.config.model.vocab_size - lm.config.model.text_vocab());
  FW_CHECK(data_tok == "unknown" || lm.tokenizer == "unknown" || data_tok == lm.tokenizer, data_dir,
           ": tokenized with '", data_tok, "' but the checkpoint was trained with '", lm.tokenizer, "'");
  return files.val;
}

void print_json(const nlohmann::json& j) {
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
}

void note(const std::string& line) { std::cerr << line << std::endl; }

std::vector<PromptLine> read_prompt_lines(const std::string& path) {
  std::ifstream in(path);
  FW_CHECK(in, path, ": cannot read");
  std::vector<PromptLine> lines;
  int64_t n = 0;
  for (std::string line; std::getline(in, line);)
    if (++n, !line.empty()) lines.push_back({n, line});
  FW_CHECK(in.eof(), path, ": read failed");
  return lines;
}

}  // namespace fw::cli
