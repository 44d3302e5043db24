// The MPI communicator, built as the plugin libflopwise_mpi.so (the only code that
// links libmpi). flopwise loads it with dlopen when an MPI launcher started it.
//
// A watchdog thread guards every collective: when one waits longer than the timeout
// (a rank died without the launcher noticing, hangs, or was stopped), this rank prints
// which collective it was waiting in and exits, and mpirun then ends the others.
#include <mpi.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/timer.h"
#include "parallel/comm.h"

namespace fw {
namespace {

class MpiComm final : public Comm {
 public:
  MpiComm() {
    int provided = 0;  // OpenMP threads compute; only the main thread calls MPI
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    library_ = std::string(version, size_t(len));
    library_ = library_.substr(0, library_.find_first_of(",\n"));
    watchdog_ = std::thread([this] { watch(); });
  }
  ~MpiComm() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    watchdog_.join();
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override { return str("MPI (", library_, "), ", size_, " ranks"); }

  void allreduce_sum(float* x, int64_t n, const char* what) override {
    Guard g(*this, what);
    for (int64_t done = 0; done < n; done += kChunk)  // MPI counts are int
      MPI_Allreduce(MPI_IN_PLACE, x + done, int(std::min(kChunk, n - done)), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }
  void allreduce_sum(double* x, int64_t n, const char* what) override {
    Guard g(*this, what);
    for (int64_t done = 0; done < n; done += kChunk)
      MPI_Allreduce(MPI_IN_PLACE, x + done, int(std::min(kChunk, n - done)), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  }
  void reduce_scatter_sum(float* x, const std::vector<int64_t>& counts, const char* what) override {
    const Layout l = layout(counts);
    Guard g(*this, what);
    // The result lands at the start of the receive buffer, which may not alias the
    // send buffer: receive into scratch, then put it at this rank's offset.
    scratch_.resize(size_t(l.counts[size_t(rank_)]));
    MPI_Reduce_scatter(x, scratch_.data(), l.counts.data(), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    std::memcpy(x + l.displs[size_t(rank_)], scratch_.data(), scratch_.size() * sizeof(float));
  }
  void allgather(float* x, const std::vector<int64_t>& counts, const char* what) override {
    const Layout l = layout(counts);
    Guard g(*this, what);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, l.counts.data(), l.displs.data(), MPI_FLOAT,
                   MPI_COMM_WORLD);
  }
  void gather_to_root(const float* mine, float* all, const std::vector<int64_t>& counts,
                      const char* what) override {
    const Layout l = layout(counts);
    Guard g(*this, what);
    MPI_Gatherv(mine, l.counts[size_t(rank_)], MPI_FLOAT, all, l.counts.data(), l.displs.data(), MPI_FLOAT, 0,
                MPI_COMM_WORLD);
  }
  std::string broadcast(const std::string& s, int root, const char* what) override {
    Guard g(*this, what);
    int64_t n = int64_t(s.size());
    MPI_Bcast(&n, 1, MPI_INT64_T, root, MPI_COMM_WORLD);
    FW_CHECK(n < INT_MAX, "MPI broadcast of ", n, " bytes is too large");
    std::string out = rank_ == root ? s : std::string(size_t(n), '\0');
    MPI_Bcast(out.data(), int(n), MPI_CHAR, root, MPI_COMM_WORLD);
    return out;
  }

  void set_timeout(double seconds) override { timeout_s_ = seconds; }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    _exit(code);  // MPI_Abort does not return; this satisfies [[noreturn]]
  }

 private:
  static constexpr int64_t kChunk = int64_t(1) << 30;

  struct Layout {
    std::vector<int> counts, displs;  // (size) MPI's int counts and offsets
  };
  Layout layout(const std::vector<int64_t>& counts) const {
    FW_CHECK(int(counts.size()) == size_, "internal: ", counts.size(), " parts for ", size_, " ranks");
    Layout l;
    int64_t at = 0;
    for (int64_t c : counts) {
      FW_CHECK(at + c < INT_MAX, "MPI: a sharded buffer of more than 2^31 elements is not supported");
      l.counts.push_back(int(c));
      l.displs.push_back(int(at));
      at += c;
    }
    return l;
  }

  // Marks the time spent inside one collective for the watchdog.
  struct Guard {
    MpiComm& c;
    Guard(MpiComm& comm, const char* what) : c(comm) {
      c.what_.store(what);
      c.since_.store(now());
    }
    ~Guard() { c.what_.store(nullptr); }
  };
  static double now() { return now_seconds(); }
  void watch() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stop_; })) {
      const char* what = what_.load();
      const double waited = now() - since_.load();
      if (what && timeout_s_ > 0 && waited > timeout_s_) {
        std::fprintf(stderr,
                     "flopwise: error: rank %d of %d: no answer from the other ranks for %.0f s in %s "
                     "(a rank died, hangs or was stopped); ending the job (limit: --comm-timeout)\n",
                     rank_, size_, waited, what);
        std::fflush(stderr);
        _exit(1);  // the launcher sees a rank fail and ends the others
      }
    }
  }

  int rank_ = 0, size_ = 1;
  std::string library_;
  std::vector<float> scratch_;
  std::atomic<const char*> what_{nullptr};
  std::atomic<double> since_{0};
  std::atomic<double> timeout_s_{600};
  std::thread watchdog_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace
}  // namespace fw

extern "C" fw::Comm* flopwise_open_mpi_comm() { return new fw::MpiComm(); }
