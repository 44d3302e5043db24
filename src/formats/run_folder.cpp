#include "formats/run_folder.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "formats/atomic_file.h"

namespace fw {

std::string run_path(const std::string& run_dir, const char* name) {
  return (std::filesystem::path(run_dir) / name).string();
}

nlohmann::json metrics_json(const MetricsRow& r) {
  nlohmann::json j = {{"step", r.step}, {"loss", r.loss}};
  auto put = [&](const char* key, double v) {
    if (std::isfinite(v)) j[key] = v;
  };
  put("lr", r.lr);
  put("grad_norm", r.grad_norm);
  put("tokens_per_s", r.tokens_per_s);
  put("mfu", r.mfu);
  j["tokens"] = r.tokens;
  j["flops"] = r.flops;
  put("seconds", r.seconds);
  put("val_loss", r.val_loss);
  put("val_accuracy", r.val_accuracy);
  put("comm_share", r.comm_share);
  return j;
}

// One line as a row, or the reason it is not one.
static bool parse_row(const std::string& line, MetricsRow& r, std::string& why) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded()) return why = "not JSON: a partial or damaged line?", false;
  if (!j.is_object()) return why = "not a JSON object", false;
  for (const char* key : {"step", "loss", "tokens", "flops"})
    if (!j.contains(key) || !j[key].is_number()) return why = str("missing number '", key, "'"), false;
  // an integer, not a float cast to one (a float beyond int64 would make the cast undefined)
  if (!j["step"].is_number_integer() || j["step"].get<int64_t>() < 0) return why = "'step' is not a step number", false;
  r = MetricsRow{};
  r.step = j["step"].get<int64_t>();
  r.loss = j["loss"].get<double>();
  r.tokens = j["tokens"].get<double>();
  r.flops = j["flops"].get<double>();
  const std::pair<const char*, double*> optional[] = {
      {"lr", &r.lr},           {"grad_norm", &r.grad_norm}, {"tokens_per_s", &r.tokens_per_s},
      {"mfu", &r.mfu},         {"seconds", &r.seconds},     {"val_loss", &r.val_loss},
      {"comm_share", &r.comm_share}, {"val_accuracy", &r.val_accuracy}};
  for (const auto& [key, v] : optional) {
    if (!j.contains(key)) continue;
    if (!j[key].is_number()) return why = str("'", key, "' is not a number"), false;
    *v = j[key].get<double>();
  }
  return true;
}

std::vector<MetricsRow> read_metrics(const std::string& path) {
  std::ifstream in(path);
  FW_CHECK(in, path, ": missing (the run has no training metrics)");
  std::vector<MetricsRow> rows;
  std::string line, why;
  for (int64_t no = 1; std::getline(in, line); no++) {
    if (line.empty()) continue;
    MetricsRow r;
    FW_CHECK(parse_row(line, r, why), path, ":", no, ": not a metrics row (", why, ")");
    rows.push_back(r);
  }
  return rows;
}

void truncate_metrics(const std::string& path, int64_t step) {
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    MetricsRow r;
    std::string why;
    if (parse_row(line, r, why) && r.step <= step) kept += line + "\n";  // a torn last line is dropped
  }
  in.close();
  write_file_atomic(path, kept);  // a crash now keeps the old rows, never none
}

}  // namespace fw
