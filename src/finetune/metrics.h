// Classification metrics from a confusion matrix: accuracy, macro-F1 (the mean over
// classes of each class's F1, a class never predicted nor present left out) and the
// Matthews correlation coefficient (GLUE's CoLA metric; for more than two classes
// Gorodkin's R_K, which equals the binary MCC for two).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace fw {

class Confusion {
 public:
  explicit Confusion(int64_t classes) : L_(classes), counts_(size_t(classes * classes), 0) {}
  void add(int32_t truth, int32_t predicted) { counts_[size_t(truth * L_ + predicted)]++; }
  int64_t count(int32_t truth, int32_t predicted) const { return counts_[size_t(truth * L_ + predicted)]; }
  int64_t total() const;
  double accuracy() const;
  double macro_f1() const;
  double matthews() const;  // 0 when either side has one class only (undefined: no variance)

 private:
  int64_t L_;
  std::vector<int64_t> counts_;  // (truth, predicted)
};

}  // namespace fw
