// flopwise sweep: isoFLOP sweeps that train every (variant, size, budget) run, record
// their final validation losses in OUT/runs.csv, and fit Approach 2 per variant.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "cli/common.h"
#include "core/error.h"
#include "scaling/law_report.h"
#include "scaling/sweep.h"

namespace fw::cli {

namespace {
struct SweepFlags {
  std::string budgets, sizes, variants = "dense,mod", data, out;
  std::string tune_lrs, tune_beta2 = "0.95";
  double tune_tokens_per_param = 20, tune_max_flops = 0, warmup_tokens_per_param = 1;
  int tune_extend = 2, bracket = 2, bootstrap = 100;
  bool tune_only = false;
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

// A comma-separated list of positive numbers; `flag` names it in errors.
std::vector<double> numbers(const std::string& list, const char* flag, const char* what) {
  std::vector<double> out;
  for (const auto& b : split_commas(list)) {
    char* end = nullptr;
    const double v = std::strtod(b.c_str(), &end);
    FW_CHECK(*end == '\0' && v > 0 && std::isfinite(v), "sweep: ", flag, ": '", b, "' is not ", what);
    out.push_back(v);
  }
  return out;
}

void run_sweep_cli(const SweepFlags& f) {
  f.common.apply();
  SweepOptions o;
  o.budgets = numbers(f.budgets, "--budgets", "a positive number of FLOPs");
  o.tuning.lrs = numbers(f.tune_lrs, "--tune-lrs", "a positive learning rate");
  o.tuning.beta2s = numbers(f.tune_beta2, "--tune-beta2", "a number in (0, 1)");
  o.tuning.tokens_per_param = f.tune_tokens_per_param;
  o.tuning.max_flops = f.tune_max_flops;
  o.tuning.max_extensions = f.tune_extend;
  o.warmup_tokens_per_param = f.warmup_tokens_per_param;
  o.bracket = f.bracket;
  o.tune_only = f.tune_only;
  o.bootstrap = f.bootstrap;
  FW_CHECK(!f.tune_only || !o.tuning.lrs.empty(), "sweep: --tune-only needs --tune-lrs");
  FW_CHECK(f.tune_extend >= 0, "sweep: --tune-extend must be >= 0");
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
    if (!r.fit_errors[v].empty()) {
      fits[r.variants[v]] = {{"error", r.fit_errors[v]}};
      continue;
    }
    fits[r.variants[v]] = approach2_json(r.fits[v]);
  }
  j["approach2"] = fits;
  nlohmann::json tuning = nlohmann::json::object();
  for (const auto& t : r.tuning) tuning[t.variant] = tuning_json(t);
  j["tuning"] = tuning;
  j["tuning_trained"] = r.tuning_trained;
  nlohmann::json brackets = nlohmann::json::array();
  for (const auto& b : r.brackets)
    brackets.push_back({{"variant", b.variant}, {"budget", b.budget}, {"bracketed", b.bracketed}, {"note", b.note}});
  j["brackets"] = brackets;
  j["fit_json"] = f.out + "/fit.json";
  if (f.common.json) {
    print_json(j);
    return;
  }
  std::printf("sweep: %d runs trained now, %d already done; all runs in %s/runs.csv\n", r.trained, r.skipped,
              f.out.c_str());
  for (const auto& t : r.tuning)
    std::printf("%s: lr_opt(N) = %.4g * N^%.3f, beta2 %.3g (%zu sizes tuned, %zu from the law)\n", t.variant.c_str(),
                t.lr_law.coefficient, t.lr_law.exponent, t.beta2, t.sizes.size(), t.untuned.size());
  std::printf("| variant | size | params | budget | steps | lr | beta2 | warmup | val loss |\n"
              "|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& run : r.runs)
    std::printf("| %s | %lldx%lld | %.3g | %.3g | %lld | %.3g | %.3g | %lld | %.4f |\n", run.variant.c_str(),
                (long long)run.layers, (long long)run.d_model, run.params, run.flops, (long long)run.steps, run.lr,
                run.beta2, (long long)run.warmup, run.loss);
  for (const auto& b : r.brackets)
    if (!b.bracketed || !b.note.empty())
      std::printf("%s at %.3g FLOPs: %s%s\n", b.variant.c_str(), b.budget, b.bracketed ? "bracketed; " : "NOT bracketed: ",
                  b.note.c_str());
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
  if (!r.fit_json.contains("variants")) return;  // --tune-only: no grid, no fits
  for (const auto& [v, rep] : r.fit_json["variants"].items()) {
    if (rep.contains("error")) {
      std::printf("%s: no Approach 3 / grid fit: %s\n", v.c_str(), rep["error"].get<std::string>().c_str());
      continue;
    }
    std::printf("%s: Approach 3 a = %.3f, grid fit a = %.3f", v.c_str(), rep["approach3"]["a"].get<double>(),
                rep["grid"]["a"].get<double>());
    if (rep.contains("bootstrap"))
      std::printf(" (90%%: %.3f-%.3f and %.3f-%.3f)", rep["bootstrap"]["approach3"]["a"][0].get<double>(),
                  rep["bootstrap"]["approach3"]["a"][1].get<double>(), rep["bootstrap"]["grid"]["a"][0].get<double>(),
                  rep["bootstrap"]["grid"]["a"][1].get<double>());
    std::printf("; all fits in %s/fit.json\n", f.out.c_str());
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
  sub->add_option("--tune-lrs", f->tune_lrs, "tuning stage: starting grid of peak learning rates, comma-separated "
                  "(e.g. 1e-3,2e-3,4e-3,8e-3); none: train.lr for every run");
  sub->add_option("--tune-beta2", f->tune_beta2, "AdamW beta2 values tried at each size's best rate (first: used "
                  "during the rate search; default 0.95)");
  sub->add_option("--tune-tokens-per-param", f->tune_tokens_per_param, "each size is tuned on this many tokens per "
                  "parameter (default 20)");
  sub->add_option("--tune-max-flops", f->tune_max_flops, "sizes whose tuning runs cost more FLOPs each are not "
                  "tuned: their rate comes from the fitted law (default: no cap)");
  sub->add_option("--tune-extend", f->tune_extend, "rates added past an edge of the grid that wins (default 2)");
  sub->add_option("--warmup-tokens-per-param", f->warmup_tokens_per_param, "warmup = this many tokens per "
                  "parameter, at most a fifth of the run (default 1; 0: train.warmup, at most a tenth)");
  sub->add_option("--bootstrap", f->bootstrap, "resampled refits for the 90% intervals in fit.json (default 100)");
  sub->add_flag("--tune-only", f->tune_only, "run the tuning stage only (then sweep budget by budget with the same "
                "--out: every sweep uses all sizes tuned there)");
  sub->add_option("--bracket", f->bracket, "sizes a budget may add beyond each edge of the grid when its best loss "
                  "lies there (default 2; 0: off)");
  f->config.add(sub);
  f->common.add(sub);
  sub->callback([f]() { run_sweep_cli(*f); });
}

}  // namespace fw::cli
