// Data-parallel training under `mpirun -np 2`: the same losses as one process with
// the same global batch, checkpoints that resume on any number of ranks, ZeRO-1 equal
// to plain data parallelism, and faults (mismatched ranks, a dead or stopped rank)
// ending the job with a clear message instead of a hang.
//
// Tolerance: two ranks sum the gradient of 8 sequences as two halves, one process as
// one; float32 sums in another order move each step's loss by ~1e-7 (measured), so
// per-step losses and gradient norms (~2) must agree to 1e-4 over 20 steps. ZeRO-1
// sums the same two halves and updates elementwise: plain data parallelism to 1e-6.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "test_util.h"

using namespace fw;
namespace fs = std::filesystem;

namespace {

constexpr double kLossTol = 1e-4, kZeroTol = 1e-6;

const std::string kConfig =
    "--set model.d_model=32 --set model.n_layers=2 --set model.n_heads=2 --set model.max_seq_len=32 "
    "--set mod.enabled=true --set train.seq_len=32 --set train.batch_size=8 --set train.steps=20 "
    "--set train.warmup=2 --set train.lr=3e-3 --set train.eval_every=10 --set train.eval_tokens=512 "
    "--set train.log_every=1 --set train.ckpt_every=0";

// `mpirun -np N flopwise`, one OpenMP thread per rank, allowed as root and without
// cross-memory attach (containers may forbid it: shared memory then copies twice).
std::string mpirun(const std::string& ranks_and_args) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe "
         "--mca btl_vader_single_copy_mechanism none -x OMP_NUM_THREADS=1 " +
         ranks_and_args;
}
std::string mpi_flopwise(int ranks, const std::string& args) {
  return mpirun("-np " + std::to_string(ranks) + " " + FLOPWISE_BIN + " " + args);
}

std::string data_folder(const std::string& name) {
  return test::text_data(name,
                         "Whether a rank reads its slice of the batch or the whole of it, the mean "
                         "gradient of the global batch is the same number, up to rounding.\n",
                         60, 2000);
}

struct Row {
  int64_t step;
  double loss, grad_norm, val_loss;  // val_loss: NaN where not evaluated
};
std::vector<Row> metrics(const std::string& run) {
  std::vector<Row> rows;
  std::ifstream in(run + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    rows.push_back({j["step"].get<int64_t>(), j["loss"].get<double>(), j["grad_norm"].get<double>(),
                    j.value("val_loss", NAN)});
  }
  return rows;
}

void expect_same_losses(const std::string& a, const std::string& b, double tol) {
  const auto ra = metrics(a), rb = metrics(b);
  ASSERT_EQ(ra.size(), 20u) << a;
  ASSERT_EQ(rb.size(), ra.size()) << b;
  for (size_t i = 0; i < ra.size(); i++) {
    EXPECT_EQ(ra[i].step, rb[i].step);
    EXPECT_NEAR(ra[i].loss, rb[i].loss, tol) << "step " << ra[i].step << ": " << a << " vs " << b;
    EXPECT_NEAR(ra[i].grad_norm, rb[i].grad_norm, tol) << "gradient norm, step " << ra[i].step;
    EXPECT_EQ(std::isnan(ra[i].val_loss), std::isnan(rb[i].val_loss));
    if (!std::isnan(ra[i].val_loss)) {
      EXPECT_NEAR(ra[i].val_loss, rb[i].val_loss, tol) << "val, step " << ra[i].step;
    }
  }
  EXPECT_LT(ra.back().loss, ra.front().loss - 0.5) << "the runs should learn";
}

void expect_ok(const test::Run& r) { ASSERT_EQ(r.code, 0) << r.out; }

// Output of a failed job: non-zero exit and our message (Open MPI adds its own banner).
void expect_job_error(const test::Run& r, const std::string& what) {
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("flopwise: error: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(what), std::string::npos) << "expected '" << what << "' in: " << r.out;
}

}  // namespace

TEST(Mpi, TwoRanksTrainLikeOneProcessWithTheSameGlobalBatch) {
  const std::string data = data_folder("mpi_same_data");
  const std::string one = test::temp_dir("mpi_same_one"), two = test::temp_dir("mpi_same_two"),
                    two_accum = test::temp_dir("mpi_same_two_accum");
  expect_ok(test::flopwise("train --data " + data + " --out " + one + " " + kConfig));
  const auto r = test::shell(mpi_flopwise(2, "train --json --data " + data + " --out " + two + " " + kConfig));
  expect_ok(r);
  EXPECT_EQ(test::last_json_line(r.out)["ranks"], 2);
  // Each rank: 2 micro-batches of 2 sequences.
  expect_ok(test::shell(
      mpi_flopwise(2, "train --data " + data + " --out " + two_accum + " " + kConfig + " --set train.grad_accum=2")));
  expect_same_losses(one, two, kLossTol);
  expect_same_losses(one, two_accum, kLossTol);
  // Rank 0 alone logs (and writes the run folder: one metrics row per step above).
  const auto last_line = r.out.find("step     20/20");
  ASSERT_NE(last_line, std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("step     20/20", last_line + 1), std::string::npos) << r.out;
}

TEST(Mpi, CheckpointsResumeOnAnyNumberOfRanks) {
  const std::string data = data_folder("mpi_resume_data");
  const std::string straight = test::temp_dir("mpi_resume_straight"), mpi_first = test::temp_dir("mpi_resume_a"),
                    one_first = test::temp_dir("mpi_resume_b");
  expect_ok(test::flopwise("train --data " + data + " --out " + straight + " " + kConfig));
  // Two ranks, then one process.
  expect_ok(test::shell(mpi_flopwise(2, "train --data " + data + " --out " + mpi_first + " --stop-after 7 " + kConfig)));
  expect_ok(test::flopwise("train --resume " + mpi_first));
  expect_same_losses(straight, mpi_first, kLossTol);
  // One process, then two ranks.
  expect_ok(test::flopwise("train --data " + data + " --out " + one_first + " --stop-after 7 " + kConfig));
  expect_ok(test::shell(mpi_flopwise(2, "train --resume " + one_first)));
  expect_same_losses(straight, one_first, kLossTol);
}

TEST(Mpi, Zero1GivesTheLossesOfPlainDataParallelism) {
  const std::string data = data_folder("mpi_zero_data");
  const std::string plain = test::temp_dir("mpi_zero_plain"), zero = test::temp_dir("mpi_zero_zero1"),
                    zero_then_plain = test::temp_dir("mpi_zero_resumed");
  expect_ok(test::shell(mpi_flopwise(2, "train --data " + data + " --out " + plain + " " + kConfig)));
  expect_ok(test::shell(mpi_flopwise(2, "train --zero1 --data " + data + " --out " + zero + " " + kConfig)));
  expect_same_losses(plain, zero, kZeroTol);
  // A ZeRO-1 checkpoint holds the whole moments (gathered on rank 0): plain data
  // parallelism resumes it and ends where the plain run did.
  expect_ok(test::shell(
      mpi_flopwise(2, "train --zero1 --data " + data + " --out " + zero_then_plain + " --stop-after 9 " + kConfig)));
  expect_ok(test::shell(mpi_flopwise(2, "train --resume " + zero_then_plain)));
  expect_same_losses(plain, zero_then_plain, kZeroTol);
}

TEST(Mpi, RanksStartedDifferentlyRefuseToStartNamingTheDifference) {
  const std::string data = data_folder("mpi_diff_data"), other = data_folder("mpi_diff_other");
  write_token_file(other + "/val.bin", std::vector<int32_t>(2000, 'a'));  // other validation tokens
  const std::string run = test::temp_dir("mpi_diff_run");
  const std::string base = std::string(FLOPWISE_BIN) + " train --out " + run + " " + kConfig;
  // MPMD launch: rank 0 and rank 1 get different command lines.
  auto r = test::shell(mpirun("-np 1 " + base + " --data " + data + " : -np 1 " + base + " --data " + data +
                              " --set train.lr=0.002"));
  expect_job_error(r, "rank 1 was started differently from rank 0: config.train.lr is 0.002 on rank 1 but 0.003");
  r = test::shell(mpirun("-np 1 " + base + " --data " + data + " : -np 1 " + base + " --data " + other));
  expect_job_error(r, "data.val.checksum is");
  EXPECT_FALSE(fs::exists(run + "/model.safetensors"));
}

TEST(Mpi, BatchThatDoesNotSplitOverTheRanksIsRefused) {
  const std::string data = data_folder("mpi_split_data");
  const auto r = test::shell(mpi_flopwise(
      2, "train --data " + data + " --out " + test::temp_dir("mpi_split_run") + " " + kConfig +
             " --set train.batch_size=6 --set train.grad_accum=2"));
  expect_job_error(r, "train.batch_size = 6 does not split into 2 ranks × train.grad_accum = 2 equal micro-batches");
}

TEST(Mpi, OnlyTrainRunsAcrossRanks) {
  expect_job_error(test::shell(mpi_flopwise(2, "flops --help")), "only `flopwise train` runs across MPI ranks");
}

namespace {

// Starts a long two-rank job in the background, waits until it trains, applies
// `signal` to rank 1, and returns the job's output and exit code (or fails the test
// if it has not ended `deadline_s` seconds later).
test::Run hurt_rank_one(const std::string& name, int signal, const std::string& extra, double deadline_s) {
  const std::string data = data_folder(name + "_data"), run = test::temp_dir(name + "_run");
  const std::string log = run + ".log", rc = run + ".rc";
  fs::remove(rc);
  const std::string job = mpi_flopwise(2, "train --data " + data + " --out " + run + " " + kConfig +
                                               " --set train.steps=1000000 --set train.eval_every=0 " + extra);
  EXPECT_EQ(std::system(("(" + job + " > " + log + " 2>&1; echo $? > " + rc + ") &").c_str()), 0);
  using clock = std::chrono::steady_clock;
  auto wait_for = [](auto done, double seconds) {
    const auto until = clock::now() + std::chrono::duration<double>(seconds);
    while (!done() && clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return done();
  };
  EXPECT_TRUE(wait_for([&] { return fs::exists(run + "/metrics.jsonl") && fs::file_size(run + "/metrics.jsonl") > 0; }, 60))
      << test::slurp(log);
  // Rank 1: the process whose command line names this run and whose environment says so.
  int pid = 0;
  for (const auto& p : fs::directory_iterator("/proc")) {
    const std::string cmdline = test::slurp(p.path().string() + "/cmdline");
    const std::string env = test::slurp(p.path().string() + "/environ");
    if (cmdline.find(run) != std::string::npos && cmdline.find("mpirun") == std::string::npos &&
        env.find(std::string("OMPI_COMM_WORLD_RANK=1") + '\0') != std::string::npos)
      pid = std::stoi(p.path().filename().string());
  }
  EXPECT_GT(pid, 0) << "rank 1 not found";
  if (pid > 0) kill(pid, signal);
  const bool ended = wait_for([&] { return fs::exists(rc) && fs::file_size(rc) > 0; }, deadline_s);
  if (pid > 0 && signal == SIGSTOP) kill(pid, SIGKILL);  // never leave a stopped process behind
  EXPECT_TRUE(ended) << "the job did not end within " << deadline_s << " s: " << test::slurp(log);
  return {ended ? std::stoi(test::slurp(rc)) : -1, test::slurp(log)};
}

}  // namespace

TEST(Mpi, ARankThatDiesEndsTheJob) {
  const auto r = hurt_rank_one("mpi_killed", SIGKILL, "", 30);
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("rank 1"), std::string::npos) << r.out;  // mpirun names the rank that died
}

TEST(Mpi, ARankThatStopsAnsweringEndsTheJobAfterTheTimeout) {
  const auto r = hurt_rank_one("mpi_stopped", SIGSTOP, "--comm-timeout 2", 30);
  expect_job_error(r, "rank 0 of 2: no answer from the other ranks for 2 s in ");
}
