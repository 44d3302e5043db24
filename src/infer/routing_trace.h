// Routing traces: for every token and every Mixture-of-Depths layer, whether the
// token was processed there and its router logit, as JSON lines:
//   {"seq":0,"pos":5,"token":101,"text":"e","layers":[1,3],"processed":[true,false],"router":[0.42,-1.3]}
// Written by `flopwise sample --trace` and `flopwise eval --trace`.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>

#include "tokenizers/tokenizer.h"
#include "infer/generator.h"

namespace fw {

class RoutingTrace {
 public:
  // tok may be null (no "text" field).
  RoutingTrace(const std::string& path, const Tokenizer* tok);
  // The n tokens just fed to sequence `row` of gen (the last n positions of its
  // context), whose decisions are entries entry..entry+n-1; written with "seq": seq.
  void record(int64_t seq, int64_t row, const int32_t* tokens, int64_t n, int64_t entry, const Generator& gen);

 private:
  std::ofstream out_;
  std::string path_;
  const Tokenizer* tok_;
};

}  // namespace fw
