#include "finetune/metrics.h"

#include <cmath>

namespace fw {

int64_t Confusion::total() const {
  int64_t n = 0;
  for (int64_t c : counts_) n += c;
  return n;
}

double Confusion::accuracy() const {
  int64_t right = 0;
  for (int64_t k = 0; k < L_; k++) right += count(int32_t(k), int32_t(k));
  const int64_t n = total();
  return n ? double(right) / double(n) : 0.0;
}

double Confusion::macro_f1() const {
  double sum = 0;
  int64_t classes = 0;
  for (int64_t k = 0; k < L_; k++) {
    int64_t predicted = 0, present = 0;
    for (int64_t j = 0; j < L_; j++) {
      predicted += count(int32_t(j), int32_t(k));
      present += count(int32_t(k), int32_t(j));
    }
    if (predicted + present == 0) continue;  // no example of it either way: no F1 to average
    sum += 2.0 * double(count(int32_t(k), int32_t(k))) / double(predicted + present);
    classes++;
  }
  return classes ? sum / double(classes) : 0.0;
}

// R_K = (c·s − Σ p_k t_k) / √((s² − Σ p_k²)(s² − Σ t_k²)), with s examples, c right,
// p_k predicted as k, t_k truly k.
double Confusion::matthews() const {
  const double s = double(total());
  double c = 0, pt = 0, pp = 0, tt = 0;
  for (int64_t k = 0; k < L_; k++) {
    double p = 0, t = 0;
    for (int64_t j = 0; j < L_; j++) {
      p += double(count(int32_t(j), int32_t(k)));
      t += double(count(int32_t(k), int32_t(j)));
    }
    c += double(count(int32_t(k), int32_t(k)));
    pt += p * t;
    pp += p * p;
    tt += t * t;
  }
  const double den = std::sqrt((s * s - pp) * (s * s - tt));
  return den > 0 ? (c * s - pt) / den : 0.0;
}

}  // namespace fw
