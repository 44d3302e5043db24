#include "kernels/packed_matmul.h"

#include <map>
#include <vector>

#include "core/error.h"
#include "kernels/onednn.h"

namespace fw {

using dnnl::memory;
using tag = memory::format_tag;

// The layout oneDNN prefers for (N,K) weights, asked of a product of a typical
// decoding size (16 rows).
static memory::desc preferred_layout(int64_t N, int64_t K, memory::data_type type) {
  const memory::desc a({16, K}, type, tag::ab), c({16, N}, memory::data_type::f32, tag::ab);
  const memory::desc any({K, N}, type, tag::any);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, any, c), onednn_engine()).weights_desc();
}

static memory::data_type precision(bool bf16) { return bf16 ? memory::data_type::bf16 : memory::data_type::f32; }

struct PackedMatrix::Impl {
  int64_t N, K;
  memory::data_type type;            // f32, or bf16 (then x is rounded on the way in)
  memory::desc packed_desc;          // W as oneDNN's (K,N) weights operand, blocked
  memory packed;                     // owns the reordered copy
  std::map<int64_t, dnnl::matmul> by_rows;  // one primitive per row count M
  std::vector<bf16> x16;             // (M,K) bf16 copy of x, bf16 mode

  dnnl::matmul& primitive(int64_t M) {
    auto it = by_rows.find(M);
    if (it != by_rows.end()) return it->second;
    const memory::desc a({M, K}, type, tag::ab), c({M, N}, memory::data_type::f32, tag::ab);
    // The weights' layout is fixed (packed once); oneDNN picks the same blocked
    // layout for every row count of these shapes, so each M's primitive takes it as is.
    try {
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, packed_desc, c), onednn_engine());
      return by_rows.emplace(M, dnnl::matmul(pd)).first->second;
    } catch (const dnnl::error& e) {  // a CPU whose oneDNN wants another layout at this row count
      fail("oneDNN has no matrix product of ", M, " rows on the weights packed for 16 (N=", N, ", K=", K, "): ",
           e.what());
    }
  }
};

PackedMatrix::PackedMatrix(const float* w, const bf16* w16, int64_t N, int64_t K)
    : impl_(std::make_unique<Impl>()) {
  Impl& p = *impl_;
  p.N = N;
  p.K = K;
  p.type = precision(w16 != nullptr);
  p.packed_desc = preferred_layout(N, K, p.type);
  p.packed = memory(p.packed_desc, onednn_engine());
  // W (N,K) row-major is the (K,N) operand in tag ba.
  memory plain({{K, N}, p.type, tag::ba}, onednn_engine(),
               w16 ? static_cast<void*>(const_cast<bf16*>(w16)) : static_cast<void*>(const_cast<float*>(w)));
  dnnl::reorder(plain, p.packed).execute(onednn_stream(), plain, p.packed);
  onednn_stream().wait();
}

PackedMatrix::~PackedMatrix() = default;
PackedMatrix::PackedMatrix(PackedMatrix&&) noexcept = default;
PackedMatrix& PackedMatrix::operator=(PackedMatrix&&) noexcept = default;

size_t PackedMatrix::bytes(int64_t N, int64_t K, bool bf16) {
  return preferred_layout(N, K, precision(bf16)).get_size();
}

// Each primitive is code generated for its row count (its own mapped pages, whose
// permission changes interrupt the other core), and a server's forwards come in every
// row count up to --batch-tokens. Built on demand per count, code kept being generated
// all through a server's work: 813 code buffers over three loads of 64 requests at the
// bench shape (a throwaway harness over Scheduler), still 40-50 a second at the end.
// So a product runs in at most two parts, rows [0, 16·⌊M/16⌋) and the rest: row counts
// 1-16 and the multiples of 16, at most 31 primitives per matrix at 256 tokens per
// forward (275 buffers over the same loads, almost all in the first; throughput alike
// within the noise). Each row's result does not depend on the row count, so the parts
// give the same bits as one call.
void PackedMatrix::forward(float* y, const float* x, int64_t M) const {
  if (M == 0) return;
  Impl& p = *impl_;
  const size_t bytes = p.type == memory::data_type::bf16 ? sizeof(bf16) : sizeof(float);
  const char* src = reinterpret_cast<const char*>(x);
  if (p.type == memory::data_type::bf16) {
    if (p.x16.size() < size_t(M * p.K)) p.x16.resize(size_t(M * p.K));
    to_bf16(p.x16.data(), x, M * p.K);
    src = reinterpret_cast<const char*>(p.x16.data());
  }
  auto part = [&](int64_t r0, int64_t rows) {  // rows [r0, r0 + rows)
    memory A({{rows, p.K}, p.type, tag::ab}, onednn_engine(), const_cast<char*>(src + size_t(r0 * p.K) * bytes));
    memory Y({{rows, p.N}, memory::data_type::f32, tag::ab}, onednn_engine(), y + r0 * p.N);
    p.primitive(rows).execute(onednn_stream(), {{DNNL_ARG_SRC, A}, {DNNL_ARG_WEIGHTS, p.packed}, {DNNL_ARG_DST, Y}});
  };
  const int64_t whole = M <= 16 ? M : M / 16 * 16;
  part(0, whole);
  if (whole < M) part(whole, M - whole);
  onednn_stream().wait();
}

size_t PackedMatrix::primitives() const { return impl_->by_rows.size(); }

}  // namespace fw
