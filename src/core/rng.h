// Deterministic random numbers: xoshiro256** seeded through splitmix64.
// The whole state is four words, saved in checkpoints so a resumed run draws
// exactly the numbers an uninterrupted run would have drawn.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>

namespace fw {

// splitmix64's finaliser: a well-mixed 64-bit hash of x (for counter-based random
// draws that must not depend on the order they are made in).
inline uint64_t hash64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }

  void reseed(uint64_t seed) {
    for (auto& w : s_) {  // splitmix64 spreads a small seed over all 256 bits
      w = hash64(seed);
      seed += 0x9E3779B97F4A7C15ull;
    }
  }

  uint64_t next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 24 random bits (exactly representable as float).
  float uniform() { return (next_u64() >> 40) * (1.0f / 16777216.0f); }

  // Standard normal by Box-Muller (one draw per call; simple and reproducible).
  float normal() {
    double u1 = ((next_u64() >> 11) + 1.0) * (1.0 / 9007199254740994.0);  // (0, 1]
    double u2 = (next_u64() >> 11) * (1.0 / 9007199254740992.0);
    return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }

  std::array<uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<uint64_t, 4>& s) { s_ = s; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<uint64_t, 4> s_;
};

}  // namespace fw
