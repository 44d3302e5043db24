// The one oneDNN CPU engine and stream every primitive of this process runs on.
// Only .cpp files that build oneDNN primitives include this (it pulls in dnnl.hpp).
#pragma once
#include <oneapi/dnnl/dnnl.hpp>

namespace fw {

dnnl::engine& onednn_engine();
dnnl::stream& onednn_stream();

}  // namespace fw
