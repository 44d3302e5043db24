// Sampling within the capacity. A Mixture-of-Depths block trained with top-k processes
// exactly k = c·T tokens of every sequence, but sampling cannot rank a sequence it has
// not seen: it decides token by token, by a logit above a threshold (causal_route in
// nn/routed_block.h). With the trained rule's threshold of 0 the share of tokens a block
// processes is whatever the router's calibration happens to be (from 0% to several
// times c), so sampling's compute is not what the capacity promises.
// Calibration picks each routed block's threshold at the (1 − c) quantile of its
// decider's logits on some text, so that the block processes a share c of that text's
// tokens. The blocks are calibrated in order, each with the blocks before it already
// calibrated, because a block's inputs depend on what the blocks before it processed.
#pragma once
#include <cstdint>
#include <vector>

#include "batching/loader.h"
#include "nn/model.h"

namespace fw {

// The threshold above which a share `capacity` of the scores lies: the midpoint between
// the scores either side of the (1 − capacity) quantile. Ties at the quantile all fall
// on one side. scores is reordered.
float capacity_threshold(std::vector<float>& scores, double capacity);

// Thresholds for every routed block of `model` (0 in unrouted layers), from the
// validation windows of `tokens` tokens of data in sequences of T (the windows evaluate
// and evaluate_causal read), each block processing the share k/T that top-k processes in
// training. One causal pass over the windows per routed block.
CausalCalibration calibrate_causal(const Model& model, TokenLoader& data, int64_t tokens, int64_t T);

}  // namespace fw
