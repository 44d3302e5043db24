// libFuzzer target: a runs CSV (`fit --runs`, a sweep's runs.csv), every selection of
// it that `fit` makes.
#include "core/error.h"
#include "fuzz_input.h"
#include "scaling/runs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fw::fuzz::input_file(data, size, "runs.csv");
  for (const char* column : {"params", "params_without_embeddings"})
    for (const char* variant : {"", "dense"}) {
      try {
        fw::RunsSelection sel;
        sel.params_column = column;
        sel.variant = variant;
        int diverged = 0;
        (void)fw::drop_highest_loss(fw::read_runs_csv(path, sel, &diverged), 1);
      } catch (const fw::Error&) {
      }
    }
  return 0;
}
