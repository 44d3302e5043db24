#include "infer/sampling.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <cmath>
#include <numeric>
#include <utility>
#include <vector>

#include "kernels/cross_entropy.h"

namespace fw {

// keys (V) ← each token's 64-bit key, in id order: its probability's bits inverted
// above its id (see sample_token).
static void candidate_keys(std::vector<uint64_t>& keys, const float* probs, int64_t V) {
  keys.resize(size_t(V));
  for (int64_t i = 0; i < V; i++) {
    uint32_t bits;
    std::memcpy(&bits, &probs[i], sizeof bits);
    keys[size_t(i)] = uint64_t(~bits) << 32 | uint32_t(i);
  }
}

// keys (V): the candidates' 64-bit keys, rebuilt in id order, then sorted in one
// stable LSD radix sort by their upper 32 bits (the inverted probability) in three passes
// of 11 bits: equal probabilities keep id order, so the result is the order sorting the
// whole keys gives. It costs O(V) where a comparison sort costs O(V log V): for flat
// distributions, whose top-p set is most of the vocabulary (a 2048-token model early in
// training: 4x less time sampling).
static void radix_sort_keys(std::vector<uint64_t>& keys, const float* probs, int64_t V) {
  thread_local std::vector<uint64_t> other;
  other.resize(size_t(V));
  candidate_keys(keys, probs, V);
  constexpr int kBits = 11;
  std::vector<uint32_t> count(size_t(1) << kBits);
  for (int shift = 32; shift < 64; shift += kBits) {
    std::fill(count.begin(), count.end(), 0u);
    for (const uint64_t k : keys) count[(k >> shift) & ((1u << kBits) - 1)]++;
    if (*std::max_element(count.begin(), count.end()) == uint32_t(V)) continue;  // one digit for all: in order
    uint32_t start = 0;
    for (auto& c : count) start += std::exchange(c, start);
    for (const uint64_t k : keys) other[count[(k >> shift) & ((1u << kBits) - 1)]++] = k;
    keys.swap(other);
  }
}

int32_t sample_token(float* logits, int64_t V, const SamplingParams& p, Rng& rng) {
  if (p.temperature <= 0) return int32_t(std::max_element(logits, logits + V) - logits);
  for (int64_t i = 0; i < V; i++) logits[i] = float(logits[i] / p.temperature);
  softmax_rows(logits, 1, V);
  // Candidates by descending probability, ties by id (a strict order, so the result is
  // deterministic), as 64-bit keys: the probability's bits inverted above the id, so one
  // integer comparison orders them (probabilities are ≥ 0, whose IEEE bits order as
  // unsigned integers). Only the prefix the draw needs is sorted, growing 4x at a time
  // (select, then sort the new part): the top-p set of a trained model is a small part
  // of the vocabulary; when it is not (a quarter of V or more), all keys are radix-sorted
  // at once. The prefix is the same as a full sort's, so are the sums over it, so is the
  // token.
  thread_local std::vector<uint64_t> order;
  candidate_keys(order, logits, V);
  const auto id = [&](size_t i) { return int32_t(order[i] & 0xFFFFFFFFu); };
  size_t sorted = 0;
  const auto sort_prefix = [&](size_t m) {  // order[0, m) holds the m most probable, in order
    m = std::min(m, size_t(V));
    if (m <= sorted) return;
    if (4 * m >= size_t(V)) {
      radix_sort_keys(order, logits, V);
      sorted = size_t(V);
      return;
    }
    if (m < size_t(V)) std::nth_element(order.begin() + std::ptrdiff_t(sorted), order.begin() + std::ptrdiff_t(m), order.end());
    std::sort(order.begin() + std::ptrdiff_t(sorted), order.begin() + std::ptrdiff_t(m));
    sorted = m;
  };
  size_t keep = size_t(V);
  if (p.top_k > 0) keep = std::min(keep, size_t(p.top_k));
  if (p.top_p < 1.0) {
    double mass = 0;
    for (size_t i = 0; i < keep; i++) {
      if (i == sorted) sort_prefix(std::max<size_t>(64, 4 * sorted));
      mass += logits[id(i)];
      if (mass >= p.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  sort_prefix(keep);
  double total = 0;
  for (size_t i = 0; i < keep; i++) total += logits[id(i)];
  double u = double(rng.uniform()) * total, acc = 0;
  for (size_t i = 0; i < keep; i++) {
    acc += logits[id(i)];
    if (u < acc) return id(i);
  }
  return id(keep - 1);
}

TokenLogprobs token_logprobs(const float* logits, int64_t V, int32_t token, int64_t top) {
  double max = logits[0];
  for (int64_t i = 1; i < V; i++) max = std::max(max, double(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < V; i++) sum += std::exp(double(logits[i]) - max);
  const double log_z = max + std::log(sum);
  TokenLogprobs r;
  r.logprob = float(double(logits[token]) - log_z);
  std::vector<int32_t> ids(static_cast<size_t>(V));
  std::iota(ids.begin(), ids.end(), 0);
  const auto more_likely = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  const auto n = std::ptrdiff_t(std::min(top, V));
  std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), more_likely);
  for (std::ptrdiff_t i = 0; i < n; i++) r.top.emplace_back(ids[size_t(i)], float(double(logits[ids[size_t(i)]]) - log_z));
  return r;
}

}  // namespace fw
