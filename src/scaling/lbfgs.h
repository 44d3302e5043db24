// Limited-memory BFGS (Nocedal & Wright, Algorithm 7.4/7.5) for small smooth
// problems: the two-loop recursion over the last m steps, and a backtracking line
// search on the Armijo condition that keeps only updates with positive curvature.
#pragma once
#include <functional>
#include <vector>

namespace fw {

// f(x, grad) returns the objective at x and writes its gradient.
using Objective = std::function<double(const std::vector<double>& x, std::vector<double>& grad)>;

struct LbfgsOptions {
  int memory = 10;
  int max_iterations = 1000;
  double gtol = 1e-10;  // stop when max |gradient| falls below
  double ftol = 1e-15;  // or the objective's relative decrease does
};

struct LbfgsResult {
  std::vector<double> x;
  double f;
  int iterations;
};

LbfgsResult lbfgs_minimize(const Objective& f, std::vector<double> x, const LbfgsOptions& opt = {});

}  // namespace fw
