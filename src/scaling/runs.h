// Training runs for scaling-law fits: one row per run, read from CSV with a header
// naming at least params, flops, loss (and optionally tokens; without it tokens =
// flops / (6·params), Chinchilla's C ≈ 6ND).
#pragma once
#include <string>
#include <vector>

namespace fw {

struct RunRecord {
  double params, tokens, flops, loss;
};

// Reads FILE.csv; a malformed row (missing column, non-number, non-positive or NaN
// value) is an error naming the file and line.
std::vector<RunRecord> read_runs_csv(const std::string& path);

// The runs without the k highest-loss ones (Epoch dropped 5 of Chinchilla's 245).
std::vector<RunRecord> drop_highest_loss(std::vector<RunRecord> runs, int k);

}  // namespace fw
