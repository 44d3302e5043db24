#include "scaling/runs.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace fw {

static std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) {
    const size_t a = cell.find_first_not_of(" \t\r"), b = cell.find_last_not_of(" \t\r");
    out.push_back(a == std::string::npos ? "" : cell.substr(a, b - a + 1));
  }
  if (!line.empty() && line.back() == ',') out.push_back("");
  return out;
}

std::vector<RunRecord> read_runs_csv(const std::string& path, const RunsSelection& sel, int* diverged) {
  std::ifstream in(path);
  FW_CHECK(in, path, ": cannot read");
  std::string line;
  FW_CHECK(std::getline(in, line), path, ": empty (expected a header with params,flops,loss)");
  const auto header = split(line);
  auto column = [&](const std::string& name) {
    auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? -1 : int(it - header.begin());
  };
  const int cp = column(sel.params_column), cf = column("flops"), cl = column("loss"), ct = column("tokens");
  const int cv = column("variant");
  FW_CHECK(cp >= 0 && cf >= 0 && cl >= 0, path, ":1: the header must name ", sel.params_column,
           ", flops and loss (got '", line, "')");
  FW_CHECK(sel.variant.empty() || cv >= 0, path, ":1: no variant column to select '", sel.variant, "' from");
  if (diverged) *diverged = 0;
  std::vector<RunRecord> runs;
  for (int no = 2; std::getline(in, line); no++) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto cells = split(line);
    auto value = [&](int col, const char* name) {
      FW_CHECK(col < int(cells.size()) && !cells[size_t(col)].empty(), path, ":", no, ": missing ", name);
      const std::string& c = cells[size_t(col)];
      char* end = nullptr;
      const double v = std::strtod(c.c_str(), &end);
      FW_CHECK(end && *end == '\0', path, ":", no, ": ", name, " '", c, "' is not a number");
      FW_CHECK(std::isfinite(v) && v > 0, path, ":", no, ": ", name, " = ", c, " must be positive and finite");
      return v;
    };
    if (cv >= 0 && !sel.variant.empty() && (cv >= int(cells.size()) || cells[size_t(cv)] != sel.variant)) continue;
    if (cl < int(cells.size()) && cells[size_t(cl)] == "inf") {
      if (diverged) ++*diverged;
      continue;
    }
    RunRecord r;
    r.params = value(cp, sel.params_column.c_str());
    r.flops = value(cf, "flops");
    r.loss = value(cl, "loss");
    r.tokens = ct >= 0 ? value(ct, "tokens") : r.flops / (6 * r.params);
    runs.push_back(r);
  }
  return runs;
}

std::vector<RunRecord> drop_highest_loss(std::vector<RunRecord> runs, int k) {
  FW_CHECK(k >= 0 && k < int(runs.size()), "--drop-highest ", k, " must be in [0, ", runs.size(), ")");
  std::stable_sort(runs.begin(), runs.end(), [](const RunRecord& a, const RunRecord& b) { return a.loss < b.loss; });
  runs.resize(runs.size() - size_t(k));
  return runs;
}

}  // namespace fw
