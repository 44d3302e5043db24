#include "infer/routing_trace.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace fw {

RoutingTrace::RoutingTrace(const std::string& path, const Tokenizer* tok)
    : out_(path, std::ios::trunc), path_(path), tok_(tok) {
  FW_CHECK(out_, path, ": cannot write the routing trace");
}

void RoutingTrace::record(int64_t seq, int64_t row, const int32_t* tokens, int64_t n, int64_t entry,
                          const Generator& gen) {
  const ModelConfig& c = gen.model().cfg;
  const int64_t first = gen.length(row) - n;
  for (int64_t i = 0; i < n; i++) {
    nlohmann::json layers = nlohmann::json::array(), processed = nlohmann::json::array(),
                   router = nlohmann::json::array();
    for (int64_t l = 0; l < c.n_layers; l++) {
      if (!c.mod.routed(l)) continue;
      const auto& d = gen.decisions(l);
      const int64_t j = entry + i;
      FW_CHECK(j < int64_t(d.size()), "routing trace: record() after a feed of more than one chunk");
      layers.push_back(l);
      processed.push_back(d[size_t(j)].processed);
      router.push_back(d[size_t(j)].router);
    }
    nlohmann::json row = {{"seq", seq}, {"pos", first + i}, {"token", tokens[i]}};
    if (tok_) row["text"] = tok_->decode({tokens[i]});
    row["layers"] = layers;
    row["processed"] = processed;
    row["router"] = router;
    out_ << row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  FW_CHECK(out_, path_, ": write failed");
}

}  // namespace fw
