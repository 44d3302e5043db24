#include "batching/masking.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/rng.h"

namespace fw {

void mask_for_mlm(int32_t* inputs, int32_t* targets, const int32_t* text, int64_t B, int64_t T, double rate,
                  const ModelConfig& model, uint64_t seed) {
  const SpecialTokens sp = model.special_tokens();
  const int64_t m = mlm_chosen_per_row(T, rate), V = model.text_vocab();
  std::vector<int32_t> slots(size_t(T - 1));
  for (int64_t b = 0; b < B; b++) {
    int32_t* in = inputs + b * T;
    int32_t* tg = targets + b * T;
    in[0] = sp.cls;
    std::copy_n(text + b * T, T - 1, in + 1);
    std::fill_n(tg, T, -1);
    Rng rng(hash64(seed ^ hash64(uint64_t(b))));
    // the first m of a partial Fisher-Yates shuffle of positions 1..T−1
    std::iota(slots.begin(), slots.end(), 1);
    for (int64_t i = 0; i < m; i++) {
      const int64_t j = i + int64_t(rng.next_u64() % uint64_t(T - 1 - i));
      std::swap(slots[size_t(i)], slots[size_t(j)]);
      const int32_t at = slots[size_t(i)];
      tg[at] = in[at];
      const float u = rng.uniform();
      if (u < 0.8f) in[at] = sp.mask;
      else if (u < 0.9f) in[at] = int32_t(rng.next_u64() % uint64_t(V));
    }
  }
}

}  // namespace fw
