#include "parallel/agreement.h"

#include "core/error.h"

namespace fw {

using nlohmann::json;

// "/config/train/lr" → "config.train.lr"
static std::string field_name(std::string pointer) {
  if (!pointer.empty() && pointer[0] == '/') pointer.erase(0, 1);
  for (char& c : pointer)
    if (c == '/') c = '.';
  return pointer;
}

// The first field where `other` (rank r's flattened setup) differs from rank 0's.
static std::string first_difference(const json& base, const json& other, int r) {
  auto value = [](const json& j, const std::string& key) {
    return j.contains(key) ? j.at(key).dump() : std::string("absent");
  };
  json keys = base;
  keys.update(other);  // the union of both key sets, in sorted order
  for (const auto& [key, unused] : keys.items()) {
    (void)unused;
    const std::string a = value(base, key), b = value(other, key);
    if (a != b)
      return str("rank ", r, " was started differently from rank 0: ", field_name(key), " is ", b, " on rank ", r,
                 " but ", a, " on rank 0 (every rank needs the same config, data and checkpoint)");
  }
  return "";
}

void check_ranks_agree(Comm& comm, const json& setup) {
  if (comm.size() == 1) return;
  const std::string mine = setup.flatten().dump();
  const json base = json::parse(comm.broadcast(mine, 0, "comparing how the ranks were started"));
  std::string difference;  // the same on every rank: each sees every rank's setup
  for (int r = 1; r < comm.size(); r++) {
    const json other = json::parse(comm.broadcast(mine, r, "comparing how the ranks were started"));
    if (difference.empty()) difference = first_difference(base, other, r);
  }
  if (difference.empty()) return;
  if (comm.rank() == 0) fail(difference);
  // One message for the job: rank 0 prints it and ends every rank (abort_world). Should
  // it not, the watchdog ends this wait after the timeout.
  comm.broadcast("", 0, "waiting for rank 0 to end the job");
  fail(difference);
}

}  // namespace fw
