// `flopwise report`: one self-contained HTML file (inline SVG, no network) about runs
// and sweeps: loss against training FLOPs and wall time, the FLOPs and speed table,
// Mixture-of-Depths routing (a map of a text, the share processed by part of speech),
// FFF tree usage by level, and isoFLOP curves with their fitted optimum.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace fw {

struct ReportOptions {
  int64_t analysis_tokens = 16384;  // validation tokens for the routing and tree analyses
  int64_t map_tokens = 160;         // tokens in the routing map
  std::string title = "flopwise report";
};

struct Report {
  std::string html;
  int runs = 0, sweeps = 0;
  std::vector<std::string> problems;  // folders left out, and why (also listed in the page)
};

// Folders that are neither runs nor sweeps, or are damaged, become problems; the
// report covers the rest.
Report build_report(const std::vector<std::string>& dirs, const ReportOptions& options);

}  // namespace fw
