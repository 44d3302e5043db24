// Ranks started with different configs, data or checkpoints would train garbage in
// lockstep (or hang in mismatched collectives); they refuse to start instead.
#pragma once
#include <nlohmann/json.hpp>

#include "parallel/comm.h"

namespace fw {

// `setup` describes how this rank was started (config, data sizes and checksums,
// resume step...). Every rank's is compared with rank 0's; on a difference every
// rank fails with one message naming the first differing field and both values:
// rank 0 throws it (the CLI prints it and ends the job), the others wait to be ended.
void check_ranks_agree(Comm& comm, const nlohmann::json& setup);

}  // namespace fw
