#include "parallel/comm.h"

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <memory>

#include "core/error.h"
#include "core/system.h"

#ifndef FLOPWISE_PLUGIN_DIR
#define FLOPWISE_PLUGIN_DIR ""
#endif

namespace fw {

namespace fs = std::filesystem;

namespace {

// One process: every collective is the identity.
class SingleProcess final : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string describe() const override { return "1 process"; }
  void allreduce_sum(float*, int64_t, const char*) override {}
  void allreduce_sum(double*, int64_t, const char*) override {}
  void reduce_scatter_sum(float*, const std::vector<int64_t>&, const char*) override {}
  void allgather(float*, const std::vector<int64_t>&, const char*) override {}
  void gather_to_root(const float* mine, float* all, const std::vector<int64_t>& counts, const char*) override {
    std::copy(mine, mine + counts[0], all);
  }
  std::string broadcast(const std::string& s, int, const char*) override { return s; }
  void set_timeout(double) override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
};

// The plugin's entry point (src/parallel/mpi/mpi_comm.cpp).
using OpenMpiComm = Comm* (*)();

std::string plugin_path() {
  if (const char* p = std::getenv("FLOPWISE_MPI_PLUGIN")) return p;
  const fs::path exe_dir = executable_dir();
  // Beside the program in a build folder; the library folder of an installation.
  for (const fs::path& dir : {exe_dir, exe_dir.parent_path() / "lib", fs::path(FLOPWISE_PLUGIN_DIR)}) {
    const fs::path p = dir / "libflopwise_mpi.so";
    if (!dir.empty() && fs::exists(p)) return p.string();
  }
  return "";
}

std::unique_ptr<Comm> open_mpi() {
  const std::string path = plugin_path();
  FW_CHECK(!path.empty(), "started by an MPI launcher (", launched_ranks(),
           " ranks) but libflopwise_mpi.so is not beside the program: this flopwise was built without "
           "MPI; install libopenmpi-dev and rebuild (scripts/setup.sh), or run without mpirun");
  // RTLD_GLOBAL: Open MPI loads its own components, which look up libmpi's symbols.
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  FW_CHECK(lib, path, ": cannot load the MPI plugin: ", dlerror());
  auto open = reinterpret_cast<OpenMpiComm>(dlsym(lib, "flopwise_open_mpi_comm"));
  FW_CHECK(open, path, ": not a flopwise MPI plugin (no flopwise_open_mpi_comm)");
  return std::unique_ptr<Comm>(open());
}

// The value of the first of these launcher variables that is set (Open MPI's, then
// the PMI names MPICH's Hydra uses), or null.
const char* launcher_env(std::initializer_list<const char*> names) {
  for (const char* name : names)
    if (const char* v = std::getenv(name)) return v;
  return nullptr;
}

std::unique_ptr<Comm>& world_slot() {
  static std::unique_ptr<Comm> comm;
  return comm;
}

}  // namespace

int launched_ranks() {
  const char* v = launcher_env({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"});
  return v ? std::max(1, std::atoi(v)) : 0;
}

std::string rank_label() {
  const int ranks = launched_ranks();
  if (ranks <= 1) return "";
  const char* rank = launcher_env({"OMPI_COMM_WORLD_RANK", "PMI_RANK"});
  return rank ? str("rank ", rank, " of ", ranks, ": ") : "";
}

Comm& single_process() {
  static SingleProcess one;
  return one;
}

Comm& world() {
  auto& comm = world_slot();
  if (!comm) {
    if (launched_ranks() == 0) return single_process();
    comm = open_mpi();
  }
  return *comm;
}

void finish_world() { world_slot().reset(); }

void abort_world(int code) {
  auto& comm = world_slot();
  if (comm && comm->size() > 1) comm->abort(code);
}

int default_threads_per_rank() {
  cpu_set_t set;
  CPU_ZERO(&set);
  const int bound = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 0;
  const int online = int(sysconf(_SC_NPROCESSORS_ONLN));
  if (bound > 0 && bound < online) return bound;
  const char* local = launcher_env({"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"});
  return std::max(1, online / (local ? std::max(1, std::atoi(local)) : 1));
}

std::vector<int64_t> split_counts(int64_t n, int parts) {
  std::vector<int64_t> counts(size_t(parts), n / parts);
  for (int64_t i = 0; i < n % parts; i++) counts[size_t(i)]++;
  return counts;
}

}  // namespace fw
