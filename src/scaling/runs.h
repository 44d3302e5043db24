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

// Which rows and columns of a runs CSV a fit uses.
struct RunsSelection {
  // "params" (total: Pearce & Song 2024 find it the right count at small scale) or
  // "params_without_embeddings" (Kaplan et al.'s convention; flopwise sweeps write both)
  std::string params_column = "params";
  std::string variant;  // only rows whose `variant` column equals this ("" = all rows)
};

// Reads FILE.csv; a malformed row (missing column, non-number, non-positive or NaN
// value) is an error naming the file and line. A loss of "inf" marks a run that
// diverged (flopwise sweeps write it): such rows are left out and counted in *diverged.
std::vector<RunRecord> read_runs_csv(const std::string& path, const RunsSelection& sel = {}, int* diverged = nullptr);

// The runs without the k highest-loss ones (Epoch dropped 5 of Chinchilla's 245).
std::vector<RunRecord> drop_highest_loss(std::vector<RunRecord> runs, int k);

}  // namespace fw
