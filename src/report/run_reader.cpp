#include "report/run_reader.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/safetensors.h"
#include "train/checkpoint.h"

namespace fw {

namespace fs = std::filesystem;

RunInfo read_run(const std::string& dir) {
  FW_CHECK(fs::is_directory(dir), dir, ": not a folder");
  const fs::path d(dir);
  FW_CHECK(fs::exists(d / "model.safetensors"), dir, ": not a run folder (no model.safetensors)");
  RunInfo r;
  r.dir = dir;
  r.name = fs::weakly_canonical(d).filename().string();
  LoadedModel lm = load_model(dir);
  r.config = lm.config;
  r.model = std::move(lm.model);
  r.tokenizer = lm.tokenizer;
  r.step = lm.step;
  if (fs::exists(d / "state.safetensors")) {
    const SafetensorsFile st((d / "state.safetensors").string());
    if (st.metadata().count("flopwise.data_dir")) r.data_dir = st.meta("flopwise.data_dir");
  }
  const std::string mpath = (d / "metrics.jsonl").string();
  std::ifstream in(mpath);
  FW_CHECK(in, mpath, ": missing (the run has no training metrics)");
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    n++;
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
      MetricsRow m;
      m.step = j.at("step").get<int64_t>();
      m.loss = j.at("loss").get<double>();
      m.tokens = j.at("tokens").get<double>();
      m.flops = j.at("flops").get<double>();
      m.tokens_per_s = j.value("tokens_per_s", 0.0);
      m.seconds = j.value("seconds", -1.0);  // runs from before it was logged lack it
      if (j.contains("val_loss")) m.val_loss = j["val_loss"].get<double>();
      r.metrics.push_back(m);
    } catch (const nlohmann::json::exception&) {
      fail(mpath, ":", n, ": not a metrics row (partial or damaged file?)");
    }
  }
  FW_CHECK(!r.metrics.empty(), mpath, ": no rows (the run has not logged a step)");
  if (fs::exists(d / "summary.json")) {
    try {
      r.summary = nlohmann::json::parse(std::ifstream(d / "summary.json"));
    } catch (const nlohmann::json::parse_error&) {
      fail((d / "summary.json").string(), ": invalid JSON");
    }
  }
  return r;
}

bool is_sweep_dir(const std::string& dir) {
  std::ifstream in(fs::path(dir) / "runs.csv");
  std::string header;
  return in && std::getline(in, header) && header.rfind("variant,layers,d_model,params", 0) == 0;
}

}  // namespace fw
