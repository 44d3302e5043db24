// flopwise: train and run compute-efficient transformer language models.
#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>
#include <new>

#include "cli/common.h"
#include "core/error.h"
#include "parallel/comm.h"

// Under mpirun every rank runs this program. An error on one rank ends every rank
// (a rank left alone would wait for it forever); success ends MPI in order. The line
// goes out in one write: std::cerr writes each << on its own, and the launcher's abort
// banner could land between the pieces.
static int fail_job(const std::string& kind, const std::string& what, int code) {
  const std::string line = "flopwise: " + kind + ": " + fw::rank_label() + what + "\n";
  std::cerr.write(line.data(), std::streamsize(line.size()));
  std::cerr.flush();
  fw::abort_world(code);
  return code;
}

// The first word that is not an option: the subcommand.
static std::string subcommand_of(int argc, char** argv) {
  for (int i = 1; i < argc; i++)
    if (argv[i][0] != '-') return argv[i];
  return "";
}

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f) would kill the process at the limit by SIGXFSZ, mid-write;
  // ignored, the write fails with EFBIG and the error names the file, the old one intact.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"flopwise: train and run compute-efficient transformer language models"};
  app.require_subcommand(1);
  fw::cli::register_prepare(app);
  fw::cli::register_tokenize(app);
  fw::cli::register_train(app);
  fw::cli::register_eval(app);
  fw::cli::register_calibrate(app);
  fw::cli::register_finetune(app);
  fw::cli::register_classify(app);
  fw::cli::register_sample(app);
  fw::cli::register_serve(app);
  fw::cli::register_bench(app);
  fw::cli::register_flops(app);
  fw::cli::register_fit(app);
  fw::cli::register_plan(app);
  fw::cli::register_sweep(app);
  fw::cli::register_report(app);
  fw::cli::register_demo(app);
  const std::string sub = subcommand_of(argc, argv);
  if (fw::launched_ranks() > 1 && sub != "train")
    return fail_job("error", "only `flopwise train` runs across MPI ranks; run `flopwise " + sub + "` without mpirun", 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    if (code != 0) fw::abort_world(code);
    return code;
  } catch (const fw::Error& e) {
    return fail_job("error", e.what(), 1);
  } catch (const std::bad_alloc&) {
    return fail_job("error", "out of memory", 1);
  } catch (const std::exception& e) {
    return fail_job("internal error", e.what(), 2);
  }
  fw::finish_world();
  return 0;
}
