#include "report/run_reader.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "formats/safetensors.h"
#include "train/checkpoint.h"

namespace fw {

namespace fs = std::filesystem;

RunInfo read_run(const std::string& dir) {
  FW_CHECK(fs::is_directory(dir), dir, ": not a folder");
  const fs::path d(dir);
  FW_CHECK(fs::exists(d / run_file::model), dir, ": not a run folder (no ", run_file::model, ")");
  RunInfo r;
  r.dir = dir;
  r.name = fs::weakly_canonical(d).filename().string();
  LoadedModel lm = load_model(dir);
  r.config = lm.config;
  r.model = std::move(lm.model);
  r.tokenizer = lm.tokenizer;
  r.step = lm.step;
  if (fs::exists(d / run_file::state)) {
    const SafetensorsFile st(run_path(dir, run_file::state));
    if (st.metadata().count("flopwise.data_dir")) r.data_dir = st.meta("flopwise.data_dir");
  }
  const std::string mpath = run_path(dir, run_file::metrics);
  r.metrics = read_metrics(mpath);
  FW_CHECK(!r.metrics.empty(), mpath, ": no rows (the run has not logged a step)");
  if (const std::string summary = run_path(dir, run_file::summary); fs::exists(summary)) {
    try {
      r.summary = nlohmann::json::parse(std::ifstream(summary));
    } catch (const nlohmann::json::exception&) {
      fail(summary, ": invalid JSON");
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
