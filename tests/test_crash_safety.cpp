// Crash safety of training runs: killed at any moment (checkpoint writes included) a
// run resumes from its last good checkpoint onto the trajectory it would have taken;
// a checkpoint that cannot be written (full disk) fails with a clear error and leaves
// the previous one intact; a run folder that cannot be written is refused before
// training starts.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/rng.h"
#include "formats/safetensors.h"
#include "test_util.h"

using namespace fw;
using fw::test::expect_error;
using fw::test::flopwise;
using fw::test::slurp;
namespace fs = std::filesystem;

namespace {

// Checkpoints every step, and steps that cost little next to writing the checkpoint
// (1.6M parameters, 8 tokens a step: ~20 MB written per step), so that kills often land
// inside a checkpoint write.
const std::string kRun =
    " --set model.d_model=256 --set model.n_layers=2 --set model.n_heads=4 --set model.max_seq_len=8"
    " --set train.seq_len=8 --set train.batch_size=1 --set train.warmup=2 --set train.eval_tokens=64"
    " --set train.eval_every=10 --set train.log_every=1 --set train.ckpt_every=1 --set train.steps=120";

std::string data_folder() {
  return test::text_data("data", "A run that is killed must come back exactly where it was. ", 60, 600);
}

// flopwise ARGS... in the background, its output into `log`.
pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> argv = {const_cast<char*>(FLOPWISE_BIN)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(FLOPWISE_BIN, argv.data());
    ::_exit(127);
  }
  return pid;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// (step, training loss) of every row of a metrics.jsonl.
std::vector<std::pair<int64_t, double>> losses(const std::string& run) {
  std::vector<std::pair<int64_t, double>> out;
  std::ifstream in(run + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    out.emplace_back(j["step"].get<int64_t>(), j["loss"].get<double>());
  }
  return out;
}

// A safetensors file's header (less the metadata keys named) and its tensors' bytes.
std::pair<nlohmann::json, std::string> contents(const std::string& path, std::vector<std::string> except = {}) {
  test::RawSafetensors f = test::read_raw_safetensors(path);
  for (const auto& k : except) f.header["__metadata__"].erase(k);
  return {f.header, f.tensors};
}

// Two checkpoints hold the same weights, moments and metadata; only the wall time of
// the steps, which no two runs share, may differ.
bool same_checkpoint(const std::string& a, const std::string& b) {
  return slurp(a + "/model.safetensors") == slurp(b + "/model.safetensors") &&
         contents(a + "/state.safetensors", {"flopwise.train_seconds"}) ==
             contents(b + "/state.safetensors", {"flopwise.train_seconds"});
}

bool has_temporaries(const std::string& run) {
  for (const auto& e : fs::directory_iterator(run))
    if (e.path().extension() == ".tmp") return true;
  return false;
}

}  // namespace

// SIGKILL at random moments, at least 50 times, many inside checkpoint writes: every
// restart resumes from the checkpoint on disk (or starts afresh before the first), and
// the run ends on the same weights, optimizer state and losses as one never killed.
TEST(CrashSafety, KilledAtRandomMomentsResumesOntoTheSameTrajectory) {
  const std::string data = data_folder();
  const std::string straight = test::temp_dir("straight"), run = test::temp_dir("killed");
  const std::string log = test::temp_dir("logs") + "/killed.log";
  const test::Run ref = flopwise("train --data " + data + " --out " + straight + kRun);
  ASSERT_EQ(ref.code, 0) << ref.out;

  // A fifth of the kills land at a random moment of start-up (which measures the matmul
  // peak for ~0.5 s); two fifths wait until this start has logged a step, then land 0-60 ms
  // later (in a step, a validation or a checkpoint write); two fifths wait until a
  // checkpoint write has begun (its first temporary appears), then land 0-30 ms later:
  // in either file's write, between the renames, or just after. 55 kills, then it runs
  // to the end.
  Rng rng(2026);
  int kills = 0, inside_writes = 0, starts = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(4);
  const std::string state_tmp = run + "/state.safetensors.tmp";
  for (bool finished = false; !finished;) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the kill loop ran out of time; " << kills << " kills";
    const bool resume = fs::exists(run + "/model.safetensors");
    const size_t logged = fs::exists(log) ? fs::file_size(log) : 0;
    const pid_t pid = spawn(resume ? split("train --resume " + run) : split("train --data " + data + " --out " + run + kRun), log);
    starts++;
    const uint64_t mode = rng.next_u64() % 5;  // 0: start-up, 1-2: after a step, 3-4: inside a write
    auto kill_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(rng.next_u64() % 500);
    bool armed = mode == 0;
    int status = 0;
    pid_t done = 0;
    while ((done = ::waitpid(pid, &status, WNOHANG)) == 0) {
      if (kills < 55 && !armed) {
        if (mode <= 2 ? slurp(log).find("step ", logged) != std::string::npos : fs::exists(state_tmp)) {
          armed = true;
          kill_at = std::chrono::steady_clock::now() + std::chrono::microseconds(rng.next_u64() % (mode <= 2 ? 60000 : 30000));
        }
      }
      if (kills < 55 && armed && std::chrono::steady_clock::now() >= kill_at) break;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    if (done == pid) {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a restart failed; see " << log;
      finished = true;
      break;
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    kills++;
    inside_writes += has_temporaries(run);
  }
  const std::string all = slurp(log);
  int completed = 0;
  for (size_t at = 0; (at = all.find("finished the checkpoint of step", at)) != std::string::npos; at++) completed++;
  std::printf("%d kills (%d inside a checkpoint write: temporaries left; %d between its renames, completed on "
              "resume), %d starts\n", kills, inside_writes, completed, starts);
  EXPECT_GE(kills, 50);
  EXPECT_GE(inside_writes, 5) << "too few kills landed inside checkpoint writes to show anything";
  EXPECT_TRUE(same_checkpoint(run, straight));
  EXPECT_EQ(losses(run), losses(straight)) << "metrics.jsonl: every step once, with the same loss";
  EXPECT_FALSE(has_temporaries(run));
}

// A crash between a checkpoint's two renames (state renamed, model not yet) leaves the
// new model whole in model.safetensors.tmp: resume completes the rename and goes on
// exactly. A torn temporary (the crash came earlier) is removed and the pair, which
// still agrees, resumes.
TEST(CrashSafety, ResumeCompletesACheckpointInterruptedBetweenItsRenames) {
  const std::string data = data_folder();
  const std::string straight = test::temp_dir("straight"), run = test::temp_dir("run");
  const std::string args = kRun + " --set train.steps=8";  // (the last --set wins)
  ASSERT_EQ(flopwise("train --data " + data + " --out " + straight + args).code, 0);
  ASSERT_EQ(flopwise("train --data " + data + " --out " + run + args + " --stop-after 3").code, 0);
  const std::string step3 = slurp(run + "/model.safetensors");
  ASSERT_EQ(flopwise("train --resume " + run + " --stop-after 4").code, 0);
  // as if killed after the state's rename at step 4: the model at 3, the new one in .tmp
  fs::rename(run + "/model.safetensors", run + "/model.safetensors.tmp");
  std::ofstream(run + "/model.safetensors", std::ios::binary) << step3;
  const test::Run r = flopwise("train --resume " + run);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("finished the checkpoint of step 4 that a crash interrupted"), std::string::npos) << r.out;
  EXPECT_TRUE(same_checkpoint(run, straight));
  EXPECT_EQ(losses(run), losses(straight));

  // a torn temporary beside an agreeing pair: removed, and the run resumes
  const std::string run2 = test::temp_dir("run2");
  ASSERT_EQ(flopwise("train --data " + data + " --out " + run2 + args + " --stop-after 3").code, 0);
  std::ofstream(run2 + "/model.safetensors.tmp", std::ios::binary) << step3.substr(0, step3.size() / 3);
  std::ofstream(run2 + "/state.safetensors.tmp", std::ios::binary) << "torn";
  const test::Run r2 = flopwise("train --resume " + run2);
  ASSERT_EQ(r2.code, 0) << r2.out;
  EXPECT_TRUE(same_checkpoint(run2, straight));
  EXPECT_FALSE(has_temporaries(run2));
}

// A checkpoint write into a full file system (here a file-size limit, `ulimit -f`, which
// fails writes past it with EFBIG as a full disk fails them with ENOSPC): one line naming
// the file, exit 1, the previous checkpoint byte for byte as it was and no temporaries;
// resumed with room again, the run ends as if nothing had happened.
TEST(CrashSafety, FullDiskKeepsThePreviousCheckpoint) {
  const std::string data = data_folder();
  const std::string straight = test::temp_dir("straight"), run = test::temp_dir("run");
  const std::string args = kRun + " --set train.steps=6";
  ASSERT_EQ(flopwise("train --data " + data + " --out " + straight + args).code, 0);
  ASSERT_EQ(flopwise("train --data " + data + " --out " + run + args + " --stop-after 2").code, 0);
  const std::string model = slurp(run + "/model.safetensors"), state = slurp(run + "/state.safetensors");
  ASSERT_GT(state.size(), 1024u * 1024) << "the limit below must cut the checkpoint";
  // 1 MiB: room for config.json and metrics.jsonl, not for a checkpoint file
  const test::Run r = test::shell("ulimit -f 1024; " + std::string(FLOPWISE_BIN) + " train --resume " + run);
  expect_error(r, "state.safetensors.tmp: write failed: File too large");
  EXPECT_TRUE(slurp(run + "/model.safetensors") == model && slurp(run + "/state.safetensors") == state)
      << "the previous checkpoint changed";
  EXPECT_FALSE(has_temporaries(run));
  const test::Run again = flopwise("train --resume " + run);
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_TRUE(same_checkpoint(run, straight));
  EXPECT_EQ(losses(run), losses(straight));
}

// A run folder that cannot be written is refused before the first step, fresh or
// resumed (as root, which ignores permission bits, the command runs as `nobody`).
TEST(CrashSafety, ReadOnlyRunFolderIsRefusedBeforeTraining) {
  const std::string data = data_folder();
  const std::string as_user = ::geteuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
  const std::string fresh = test::temp_dir("fresh");
  fs::permissions(fresh, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                             fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  test::Run r = test::shell(as_user + FLOPWISE_BIN + " train --data " + data + " --out " + fresh + kRun);
  expect_error(r, fresh + ": run folder is not writable: Permission denied");
  EXPECT_EQ(r.out.find("step "), std::string::npos) << "refused only after training began: " << r.out;
  EXPECT_TRUE(fs::is_empty(fresh));

  const std::string done = test::temp_dir("resumed");
  ASSERT_EQ(flopwise("train --data " + data + " --out " + done + kRun + " --stop-after 2").code, 0);
  const std::string model = slurp(done + "/model.safetensors");
  fs::permissions(done, fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                  fs::perm_options::remove);
  r = test::shell(as_user + FLOPWISE_BIN + " train --resume " + done);
  expect_error(r, done + ": run folder is not writable: Permission denied");
  EXPECT_EQ(r.out.find("step "), std::string::npos) << r.out;
  EXPECT_TRUE(slurp(done + "/model.safetensors") == model);
  fs::permissions(done, fs::perms::owner_write, fs::perm_options::add);  // so the next run can clean up
  fs::permissions(fresh, fs::perms::owner_write, fs::perm_options::add);
}
