// flopwise: train and run compute-efficient transformer language models.
#include <CLI/CLI.hpp>
#include <iostream>
#include <new>

#include "cli/common.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"flopwise: train and run compute-efficient transformer language models"};
  app.require_subcommand(1);
  fw::cli::register_prepare(app);
  fw::cli::register_tokenize(app);
  fw::cli::register_train(app);
  fw::cli::register_eval(app);
  fw::cli::register_sample(app);
  fw::cli::register_bench(app);
  fw::cli::register_flops(app);
  fw::cli::register_fit(app);
  fw::cli::register_plan(app);
  fw::cli::register_sweep(app);
  fw::cli::register_report(app);
  fw::cli::register_demo(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const fw::Error& e) {
    std::cerr << "flopwise: error: " << e.what() << std::endl;
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "flopwise: error: out of memory" << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "flopwise: internal error: " << e.what() << std::endl;
    return 2;
  }
  return 0;
}
