// A communicator over the processes of one training job: rank, size and the few
// collectives data-parallel training needs. One process is a communicator of size 1
// whose collectives do nothing, so the trainer has a single code path.
//
// Under mpirun the communicator is MPI's, loaded at run time from the plugin
// libflopwise_mpi.so (src/parallel/mpi/): the flopwise program itself never links
// libmpi, so it builds and runs single-process where Open MPI is not installed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace fw {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string describe() const = 0;  // "1 process" or "MPI (Open MPI v4.1.4), 2 ranks"

  // Collectives; every rank calls them in the same order. `what` names the call in
  // the message a rank prints when the others stop answering (see set_timeout).
  virtual void allreduce_sum(float* x, int64_t n, const char* what) = 0;   // x: (n) in place
  virtual void allreduce_sum(double* x, int64_t n, const char* what) = 0;  // x: (n) in place
  // x: the whole buffer, split in consecutive parts of counts[rank] elements. After
  // reduce_scatter_sum this rank's part holds the sum over ranks (the rest is stale);
  // after allgather every part holds its owner's values.
  virtual void reduce_scatter_sum(float* x, const std::vector<int64_t>& counts, const char* what) = 0;
  virtual void allgather(float* x, const std::vector<int64_t>& counts, const char* what) = 0;
  // mine: (counts[rank]) this rank's part; all: (sum of counts) filled on rank 0 only
  // (unused elsewhere), so only the root holds the whole buffer.
  virtual void gather_to_root(const float* mine, float* all, const std::vector<int64_t>& counts,
                              const char* what) = 0;
  virtual std::string broadcast(const std::string& s, int root, const char* what) = 0;  // root's s on all

  // A collective that waits longer than this ends the job with a message naming it
  // (a rank that died or hangs must not leave the others waiting forever).
  virtual void set_timeout(double seconds) = 0;
  // Ends every rank of the job now with this exit code (after an error on one rank).
  [[noreturn]] virtual void abort(int code) = 0;
};

// Ranks the MPI launcher started this process among (read from its environment:
// OMPI_COMM_WORLD_SIZE, PMI_SIZE); 0 when not started by a launcher.
int launched_ranks();
// "rank 1 of 2: " for messages of a process among several ranks; "" otherwise.
std::string rank_label();

// This process alone: every collective is the identity.
Comm& single_process();

// The job's communicator: MPI's when started by a launcher, else one process. Made on
// first use; refused with a clear message when launched by mpirun but the MPI plugin
// is missing.
Comm& world();
// Ends the job: MPI_Finalize after success; after an error on this rank, every rank
// is ended (single process: nothing to do).
void finish_world();
void abort_world(int code);

// OpenMP threads for one rank when neither --threads nor OMP_NUM_THREADS says: the
// cores this process is bound to, or, unbound, this host's cores shared among its ranks.
int default_threads_per_rank();

// Splits n elements into `parts` consecutive counts differing by at most one.
std::vector<int64_t> split_counts(int64_t n, int parts);

}  // namespace fw
