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

void PackedMatrix::forward(float* y, const float* x, int64_t M) const {
  if (M == 0) return;
  Impl& p = *impl_;
  const void* src = x;
  if (p.type == memory::data_type::bf16) {
    if (p.x16.size() < size_t(M * p.K)) p.x16.resize(size_t(M * p.K));
    to_bf16(p.x16.data(), x, M * p.K);
    src = p.x16.data();
  }
  memory A({{M, p.K}, p.type, tag::ab}, onednn_engine(), const_cast<void*>(src));
  memory Y({{M, p.N}, memory::data_type::f32, tag::ab}, onednn_engine(), y);
  p.primitive(M).execute(onednn_stream(), {{DNNL_ARG_SRC, A}, {DNNL_ARG_WEIGHTS, p.packed}, {DNNL_ARG_DST, Y}});
  onednn_stream().wait();
}

}  // namespace fw
