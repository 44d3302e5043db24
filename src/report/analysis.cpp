#include "report/analysis.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "corpus/brown.h"
#include "infer/causal_eval.h"
#include "infer/generator.h"

namespace fw {

RoutingMap routing_map(const Model& model, const Tokenizer& tok, const std::vector<int32_t>& tokens) {
  const ModelConfig& c = model.cfg;
  FW_CHECK(!tokens.empty() && int64_t(tokens.size()) <= c.max_seq_len, "routing map: 1 to ", c.max_seq_len,
           " tokens, not ", tokens.size());
  RoutingMap m;
  for (int64_t l = 0; l < c.n_layers; l++)
    if (c.mod.routed(l)) m.layers.push_back(l);
  const int64_t n = int64_t(tokens.size());
  Generator gen(model, n, n);  // one chunk: every token's decisions stay readable
  gen.feed(tokens.data(), n);
  m.processed.assign(size_t(n), 0);
  m.router.assign(size_t(n), std::vector<float>(m.layers.size()));
  for (int64_t i = 0; i < n; i++) {
    m.text.push_back(tok.decode({tokens[size_t(i)]}));
    for (size_t k = 0; k < m.layers.size(); k++) {
      const auto& d = gen.decisions(m.layers[k])[size_t(i)];
      m.processed[size_t(i)] += d.processed;
      m.router[size_t(i)][k] = d.router;
    }
  }
  return m;
}

PosRouting routing_by_pos(const Model& model, TokenLoader& val, const std::vector<int32_t>& pos_ids,
                          const std::vector<std::string>& tag_names, int64_t tokens, int64_t T) {
  FW_CHECK(int64_t(pos_ids.size()) == val.size(), val.name(), ": ", val.size(), " tokens but its POS file has ",
           pos_ids.size());
  const ModelConfig& c = model.cfg;
  std::vector<int64_t> routed;
  for (int64_t l = 0; l < c.n_layers; l++)
    if (c.mod.routed(l)) routed.push_back(l);
  FW_CHECK(!routed.empty(), "routing by part of speech: the model has no routed layers");
  std::map<std::string, std::pair<int64_t, double>> by_class;  // class → (tokens, processed sum)
  int64_t seq = 0;
  evaluate_causal(model, val, std::min(tokens, val.size() - 1), T, model.causal_thresholds(true), [&](const std::vector<int32_t>&, const Generator& g) {
    for (int64_t t = 0; t < T; t++) {
      const int32_t tag = pos_ids[size_t((seq * T + t) % val.size())];
      FW_CHECK(tag >= 0 && size_t(tag) < tag_names.size(), "POS file: tag id ", tag, " has no name");
      double p = 0;
      for (int64_t l : routed) p += g.decisions(l)[size_t(t)].processed;
      auto& e = by_class[pos_class(tag_names[size_t(tag)])];
      e.first++;
      e.second += p / double(routed.size());
    }
    seq++;
  });
  PosRouting r;
  for (const auto& [cls, e] : by_class) {
    r.classes.push_back(cls);
    r.tokens.push_back(e.first);
    r.processed.push_back(e.second / double(e.first));
  }
  return r;
}

std::vector<std::vector<double>> fff_level_usage(const MlpShape& s, const std::vector<std::vector<int64_t>>& visits) {
  FW_CHECK(s.kind == MlpKind::fff, "FFF level usage: the model's MLP is not an fff tree");
  std::vector<std::vector<double>> out;
  const int64_t N = s.tree_nodes();
  for (const auto& v : visits) {
    FW_CHECK(int64_t(v.size()) == s.K * N, "FFF level usage: ", v.size(), " counters for ", s.K, " trees of ", N);
    std::vector<double> level(size_t(s.D + 1), 0.0);
    for (int64_t d = 0; d <= s.D; d++) {
      const int64_t first = (int64_t(1) << d) - 1, width = int64_t(1) << d;
      int64_t used = 0;
      for (int64_t k = 0; k < s.K; k++)
        for (int64_t i = first; i < first + width; i++) used += v[size_t(k * N + i)] > 0;
      level[size_t(d)] = double(used) / double(s.K * width);
    }
    out.push_back(level);
  }
  return out;
}

}  // namespace fw
