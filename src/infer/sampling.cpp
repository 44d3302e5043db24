#include "infer/sampling.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <cmath>
#include <numeric>
#include <utility>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/cross_entropy.h"

namespace fw {

// Candidates by descending probability, ties by id, as 64-bit keys: the probability's
// IEEE bits inverted above the id, so that one unsigned comparison orders them
// (probabilities are ≥ 0, whose bits order as unsigned integers).
static uint64_t candidate_key(float prob, int64_t id) {
  uint32_t bits;
  std::memcpy(&bits, &prob, sizeof bits);
  return uint64_t(~bits) << 32 | uint32_t(id);
}
static float key_prob(uint64_t key) {
  const uint32_t bits = ~uint32_t(key >> 32);
  float prob;
  std::memcpy(&prob, &bits, sizeof prob);
  return prob;
}

// ids (V + 16) ← in increasing order, the ids whose probability lies in [lo, hi) (with
// no upper bound when `top`; all below hi, NaNs too, when `rest`); returns how many.
static size_t ids_in_range(uint32_t* ids, const float* probs, int64_t V, float lo, float hi, bool top, bool rest) {
  const auto in = [&](float p) { return rest ? !(p >= hi) : p >= lo && (top || p < hi); };
  size_t n = 0;
  int64_t i = 0;
#if defined(__AVX512F__)
  // 16 at a time: the ids of a mask compressed into one register, stored whole, the
  // count advanced by the mask's bits (most probabilities fall outside a chunk)
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (; i + 16 <= V; i += 16, idx = _mm512_add_epi32(idx, _mm512_set1_epi32(16))) {
    const __m512 p = _mm512_loadu_ps(probs + i);
    const __mmask16 below = _mm512_cmp_ps_mask(p, vhi, _CMP_LT_OQ);
    const __mmask16 m = rest ? __mmask16(~_mm512_cmp_ps_mask(p, vhi, _CMP_GE_OQ))
                             : __mmask16(_mm512_cmp_ps_mask(p, vlo, _CMP_GE_OQ) & (top ? 0xFFFF : below));
    _mm512_storeu_si512(ids + n, _mm512_maskz_compress_epi32(m, idx));
    n += size_t(__builtin_popcount(m));
  }
#endif
  for (; i < V; i++) {
    ids[n] = uint32_t(i);
    n += in(probs[i]);
  }
  return n;
}

// The candidates in order, found only as far as the draw needs, a chunk at a time:
// those of probability ≥ 1/64, then the rest ≥ 1/1024, and so on down by 16x, the last
// chunk all that remain. Each chunk is found in one pass over the vocabulary, sorted
// on its own and appended, so what has been found is a prefix of the whole order: a
// trained model's top-p set usually lies in the first chunk or two, a flat
// distribution's takes a few more passes. (It replaced a prefix grown 4x at a time by
// selection over the whole vocabulary, then a radix sort of it all; the same tokens.)
class CandidateOrder {
 public:
  CandidateOrder(const float* probs, int64_t V) : probs_(probs), V_(V) {
    // one draw's at a time per thread, kept from draw to draw (a vocabulary of 50257
    // tokens allocated anew took 0.3 ms of page faults per draw)
    thread_local std::vector<uint64_t> keys, other;
    thread_local std::vector<uint32_t> ids;
    keys.resize(size_t(V));
    other.resize(size_t(V));
    ids.resize(size_t(V) + 16);  // ids_in_range writes up to 16 past what it keeps
    keys_ = keys.data();
    other_ = other.data();
    ids_ = ids.data();
  }
  size_t found() const { return found_; }
  // Appends the next chunk that is not empty (the caller asks only while some remain,
  // so the last chunk, all that remain, is never empty).
  void extend() {
    const size_t first = found_;
    while (found_ == first && chunk_ <= kLastChunk) {
      // chunk c: probabilities in [2^(-6-4c), 2^(-2-4c)), the first without an upper
      // bound, the last without a lower one (so that it also takes NaNs)
      const float lo = std::ldexp(1.0f, -6 - 4 * chunk_), hi = 16 * lo;
      const size_t n = ids_in_range(ids_, probs_, V_, lo, hi, chunk_ == 0, chunk_ == kLastChunk);
      for (size_t j = 0; j < n; j++) keys_[found_ + j] = candidate_key(probs_[ids_[j]], ids_[j]);
      found_ += n;
      chunk_++;
    }
    sort_chunk(keys_ + first, keys_ + found_);
  }
  uint64_t operator[](size_t i) const { return keys_[i]; }

 private:
  static constexpr int kLastChunk = 8;  // all below 2^-34 at once
  // A small chunk by whole keys; a large one by a stable LSD radix sort of the
  // probability's bits, 8 at a time: the pass left it in id order, so equal
  // probabilities stay in id order, as sorting whole keys leaves them.
  void sort_chunk(uint64_t* first, uint64_t* last) {
    const size_t n = size_t(last - first);
    if (n <= 128) return std::sort(first, last);
    uint64_t *from = first, *to = other_;
    for (int lo = 32; lo < 64; lo += 8) {
      uint32_t count[256] = {};
      for (size_t j = 0; j < n; j++) count[(from[j] >> lo) & 255]++;
      if (*std::max_element(count, count + 256) == uint32_t(n)) continue;  // one digit for all
      uint32_t start = 0;
      for (auto& c : count) start += std::exchange(c, start);
      for (size_t j = 0; j < n; j++) to[count[(from[j] >> lo) & 255]++] = from[j];
      std::swap(from, to);
    }
    if (from != first) std::copy(from, from + n, first);
  }
  const float* probs_;
  int64_t V_;
  uint64_t *keys_, *other_;  // (V) the keys found, in order; the radix sort's other half
  uint32_t* ids_;            // (V + 16) a chunk's ids
  size_t found_ = 0;
  int chunk_ = 0;
};

int32_t sample_token(float* logits, int64_t V, const SamplingParams& p, Rng& rng) {
  if (p.temperature <= 0) return int32_t(std::max_element(logits, logits + V) - logits);
  for (int64_t i = 0; i < V; i++) logits[i] = float(logits[i] / p.temperature);
  softmax_rows(logits, 1, V);
  size_t keep = size_t(V);
  if (p.top_k > 0) keep = std::min(keep, size_t(p.top_k));
  // The kept candidates' running sums in order: the top-p cut where the sum first
  // reaches top_p, the draw where it first passes u · (the kept mass).
  CandidateOrder order(logits, V);
  thread_local std::vector<double> sums;
  sums.resize(keep);
  double mass = 0;
  for (size_t i = 0; i < keep; i++) {
    if (i == order.found()) order.extend();
    sums[i] = mass += key_prob(order[i]);
    if (p.top_p < 1.0 && mass >= p.top_p) {
      keep = i + 1;
      break;
    }
  }
  const double u = double(rng.uniform()) * sums[keep - 1];
  const size_t at = size_t(std::upper_bound(sums.begin(), sums.begin() + std::ptrdiff_t(keep), u) - sums.begin());
  return int32_t(order[std::min(at, keep - 1)] & 0xFFFFFFFFu);
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
