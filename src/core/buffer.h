// Aligned float storage and an arena that hands out views of it.
// Parameters, gradients and optimizer moments each live in one Buffer; the
// activations of a (batch, sequence) shape are carved out of one Arena, sized once.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

namespace fw {

// 64-byte aligned, zero-initialised float array.
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t n) { resize(n); }
  void resize(size_t n) {
    size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
    float* p = static_cast<float*>(std::aligned_alloc(64, bytes ? bytes : 64));
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, bytes);
    data_.reset(p);
    size_ = n;
  }
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  size_t size() const { return size_; }
  void zero() { std::memset(data_.get(), 0, size_ * sizeof(float)); }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  size_t size_ = 0;
};

// Bump allocator over one Buffer. Two passes: count (reserve) then carve (take),
// so the size is known before anything is allocated.
class Arena {
 public:
  // Each view starts on a 64-byte boundary.
  static size_t rounded(size_t n) { return (n + 15) / 16 * 16; }
  void reserve(size_t n) { planned_ += rounded(n); }
  size_t planned() const { return planned_; }
  void allocate() { buf_.resize(planned_); used_ = 0; }
  float* take(size_t n) {
    float* p = buf_.data() + used_;
    used_ += rounded(n);
    return p;
  }

 private:
  Buffer buf_;
  size_t planned_ = 0, used_ = 0;
};

}  // namespace fw
