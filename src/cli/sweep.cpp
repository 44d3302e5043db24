// flopwise sweep: isoFLOP sweeps that train every (variant, size, budget) run, record
// their final validation losses in OUT/runs.csv, and fit Approach 2 per variant.
#include <cstdio>
#include <sstream>

#include "cli/common.h"
#include "core/error.h"
#include "scaling/sweep.h"

namespace fw::cli {

namespace {
struct SweepFlags {
  std::string budgets, sizes, variants = "dense,mod", data, out;
  ConfigFlags config;
  CommonFlags common;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

void run_sweep_cli(const SweepFlags& f) {
  f.common.apply();
  SweepOptions o;
  for (const auto& b : split_commas(f.budgets)) {
    char* end = nullptr;
    const double v = std::strtod(b.c_str(), &end);
    FW_CHECK(*end == '\0' && v > 0, "sweep: --budgets: '", b, "' is not a positive number of FLOPs");
    o.budgets.push_back(v);
  }
  for (const auto& s : split_commas(f.sizes)) o.sizes.push_back(parse_shape(s));
  o.variants = split_commas(f.variants);
  o.data_dir = f.data;
  o.out_dir = f.out;
  o.base = f.config.build();
  o.log = [&](const std::string& line) { note(line); };
  const SweepResult r = run_sweep(o);
  nlohmann::json j = {{"trained", r.trained}, {"skipped", r.skipped}, {"runs_csv", f.out + "/runs.csv"}};
  nlohmann::json fits = nlohmann::json::object();
  for (size_t v = 0; v < r.variants.size(); v++) {
    const IsoflopFit& fit = r.fits[v];
    if (!r.fit_errors[v].empty()) {
      fits[r.variants[v]] = {{"error", r.fit_errors[v]}};
      continue;
    }
    nlohmann::json minima = nlohmann::json::array();
    for (const auto& m : fit.minima)
      minima.push_back({{"flops", m.flops}, {"n_opt", m.n_opt}, {"d_opt", m.d_opt}, {"loss", m.loss}});
    fits[r.variants[v]] = {{"minima", minima}, {"a", fit.n_opt.exponent}, {"b", fit.d_opt.exponent}};
  }
  j["approach2"] = fits;
  if (f.common.json) {
    print_json(j);
    return;
  }
  std::printf("sweep: %d runs trained now, %d already done; all runs in %s/runs.csv\n", r.trained, r.skipped,
              f.out.c_str());
  std::printf("| variant | size | params | budget | steps | val loss |\n|---|---|---:|---:|---:|---:|\n");
  for (const auto& run : r.runs)
    std::printf("| %s | %lldx%lld | %.3g | %.3g | %lld | %.4f |\n", run.variant.c_str(), (long long)run.layers,
                (long long)run.d_model, run.params, run.flops, (long long)run.steps, run.loss);
  for (size_t v = 0; v < r.variants.size(); v++) {
    if (!r.fit_errors[v].empty()) {
      std::printf("%s: no isoFLOP fit: %s\n", r.variants[v].c_str(), r.fit_errors[v].c_str());
      continue;
    }
    std::printf("%s: N_opt ~ C^%.3f, D_opt ~ C^%.3f;", r.variants[v].c_str(), r.fits[v].n_opt.exponent,
                r.fits[v].d_opt.exponent);
    for (const auto& m : r.fits[v].minima) std::printf(" C %.3g: N_opt %.3g (loss %.4f);", m.flops, m.n_opt, m.loss);
    std::printf("\n");
  }
}
}  // namespace

void register_sweep(CLI::App& app) {
  auto f = std::make_shared<SweepFlags>();
  auto* sub = app.add_subcommand("sweep", "isoFLOP sweep: train sizes x budgets, fit the minima per variant");
  sub->add_option("--budgets", f->budgets, "training FLOPs per run, comma-separated (e.g. 1e13,3e13,1e14)")->required();
  sub->add_option("--sizes", f->sizes, "model shapes LAYERSxWIDTH, comma-separated (e.g. 2x64,2x128,4x128)")->required();
  sub->add_option("--variants", f->variants, "dense,mod (default both)");
  sub->add_option("--data", f->data, "data folder")->required();
  sub->add_option("--out", f->out, "sweep folder: runs.csv and one run folder per run")->required();
  f->config.add(sub);
  f->common.add(sub);
  sub->callback([f]() { run_sweep_cli(*f); });
}

}  // namespace fw::cli
