#include "scaling/sweep.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "scaling/charts.h"
#include "scaling/law_report.h"

namespace fw {

namespace fs = std::filesystem;

nlohmann::json tuning_json(const VariantTuning& t) {
  nlohmann::json sizes = nlohmann::json::array(), untuned = nlohmann::json::array();
  for (const auto& s : t.sizes)
    sizes.push_back({{"size", shape_name(s.shape)}, {"params", s.params}, {"lr", s.lr}, {"beta2", s.beta2},
                     {"loss", s.best_loss}});
  for (const auto& s : t.untuned) untuned.push_back(shape_name(s));
  return {{"lr_law", {{"coefficient", t.lr_law.coefficient}, {"exponent", t.lr_law.exponent}}},
          {"beta2", t.beta2}, {"sizes", sizes}, {"untuned", untuned}};
}

RunHyper sweep_hyper(const SweepOptions& o, const VariantTuning* t, double params) {
  if (!t || t->sizes.empty()) return {o.base.train.lr, o.base.train.beta2, o.warmup_tokens_per_param};
  return {t->lr_law.at(params), t->beta2, o.warmup_tokens_per_param};
}

bool neighbour_shape(const Config& base, const std::string& variant, const SweepShape& edge, double factor,
                     const std::vector<SweepShape>& taken, SweepShape& out) {
  const double n0 = sweep_params(base, variant, edge), target = std::log(n0 * factor);
  double best = INFINITY;
  for (int64_t L = 1; L <= 16; L++)
    for (int64_t d = 32; d <= 1024; d += 32) {
      if (d < 16 * L) continue;
      const SweepShape s{L, d};
      bool used = false;
      for (const auto& t : taken) used |= t.layers == L && t.d_model == d;
      if (used) continue;
      try {
        sweep_config(base, variant, s, 1, {1, 0.95, 0}).model.validate();  // e.g. MoD needs a routed block
      } catch (const Error&) {
        continue;
      }
      const double n = sweep_params(base, variant, s);
      if (factor > 1 ? n <= n0 : n >= n0) continue;
      const double dist = std::abs(std::log(n) - target);
      if (dist < best) best = dist, out = s;
    }
  return std::isfinite(best);
}

static std::string run_name(const std::string& variant, const SweepShape& s, double budget) {
  return str(variant, "_", shape_name(s), "_C", budget);
}

// The runs of one variant within 10% of a budget.
static std::vector<SweepRun> group_of(const std::vector<SweepRun>& runs, const std::string& variant, double budget) {
  std::vector<SweepRun> g;
  for (const auto& r : runs)
    if (r.variant == variant && std::abs(std::log(r.flops / budget)) < std::log(1.1)) g.push_back(r);
  std::stable_sort(g.begin(), g.end(), [](const SweepRun& a, const SweepRun& b) { return a.params < b.params; });
  return g;
}

// fit.json: per variant its law report (every run of runs.csv), its tuning, and per
// budget (runs within 10% of each other) each variant's best run.
static nlohmann::json sweep_fits(const SweepOptions& o, const SweepResult& res) {
  nlohmann::json variants = nlohmann::json::object(), tuning = nlohmann::json::object();
  std::vector<std::string> names;
  for (const auto& r : res.runs)
    if (std::find(names.begin(), names.end(), r.variant) == names.end()) names.push_back(r.variant);
  for (const auto& v : names) {
    std::vector<RunRecord> recs;
    for (const auto& r : res.runs)
      if (r.variant == v && std::isfinite(r.loss)) recs.push_back({r.params, r.tokens, r.flops, r.loss});
    LawReportOptions lo;
    lo.bootstrap = o.bootstrap;
    lo.budgets = {1e12, 1e13, 1e14, 1e15};
    try {
      variants[v] = law_report(recs, lo);
    } catch (const Error& e) {
      variants[v] = {{"error", e.what()}};
      continue;
    }
    try {
      variants[v]["approach2"] = approach2_json(fit_isoflop(recs));
    } catch (const Error& e) {
      variants[v]["approach2"] = {{"error", e.what()}};
    }
  }
  for (const auto& t : res.tuning) tuning[t.variant] = tuning_json(t);
  // the frontier: per budget, each variant's lowest loss
  std::vector<SweepRun> sorted = res.runs;
  std::stable_sort(sorted.begin(), sorted.end(), [](const SweepRun& a, const SweepRun& b) { return a.flops < b.flops; });
  nlohmann::json frontier = nlohmann::json::array();
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j < sorted.size() && sorted[j].flops <= sorted[i].flops * 1.1) j++;
    nlohmann::json best = nlohmann::json::object();
    for (size_t k = i; k < j; k++) {
      const SweepRun& r = sorted[k];
      if (!std::isfinite(r.loss) || (best.contains(r.variant) && best[r.variant]["loss"].get<double>() <= r.loss)) continue;
      best[r.variant] = {{"run", r.run}, {"params", r.params}, {"loss", r.loss}};
    }
    frontier.push_back({{"flops", sorted[i].flops}, {"best", best}});
    i = j;
  }
  return {{"variants", variants}, {"tuning", tuning}, {"frontier", frontier}};
}

SweepResult run_sweep(const SweepOptions& o) {
  FW_CHECK(!o.budgets.empty() && !o.sizes.empty() && !o.variants.empty(), "sweep: give budgets, sizes and variants");
  for (const auto& v : o.variants) FW_CHECK(v == "dense" || v == "mod", "sweep: variant '", v, "' must be dense or mod");
  for (double b : o.budgets) FW_CHECK(b > 0 && std::isfinite(b), "sweep: budget ", b, " must be positive");
  for (double lr : o.tuning.lrs) FW_CHECK(lr > 0 && std::isfinite(lr), "sweep: tuning rate ", lr, " must be positive");
  for (double b2 : o.tuning.beta2s) FW_CHECK(b2 >= 0 && b2 < 1, "sweep: tuning beta2 ", b2, " must be in [0, 1)");
  FW_CHECK(o.tuning.tokens_per_param > 0, "sweep: tuning tokens per parameter must be positive");
  FW_CHECK(o.warmup_tokens_per_param >= 0, "sweep: warmup tokens per parameter must be >= 0");
  FW_CHECK(o.bracket >= 0, "sweep: --bracket must be >= 0");
  // every run's configuration is checked before any trains
  for (const auto& variant : o.variants)
    for (const auto& shape : o.sizes)
      for (double budget : o.budgets) {
        const Config cfg = sweep_config(o.base, variant, shape, budget, sweep_hyper(o, nullptr, 1));
        cfg.validate();  // e.g. MoD routing no block of a 1-layer model
        FW_CHECK(cfg.train.steps >= 10, "sweep: ", variant, " ", shape_name(shape), " at ", budget,
                 " FLOPs gets only ", cfg.train.steps, " steps; raise the budget or shrink the model or batch");
      }
  fs::create_directories(o.out_dir);
  const std::string csv = o.out_dir + "/runs.csv";
  check_sweep_csv_appendable(csv);
  check_sweep_csv_appendable(o.out_dir + "/tuning.csv");
  SweepResult res;
  res.runs = read_sweep_csv(csv);
  auto log = [&](const std::string& s) {
    if (o.log) o.log(s);
  };
  // the tuning stage
  if (!o.tuning.lrs.empty())
    for (const auto& variant : o.variants) {
      res.tuning.push_back(tune_variant(o.base, variant, o.sizes, o.tuning, o.warmup_tokens_per_param, o.data_dir,
                                        o.out_dir, o.log, res.tuning_trained));
      const VariantTuning& t = res.tuning.back();
      log(str("sweep: ", variant, ": lr_opt(N) = ", t.lr_law.coefficient, " * N^", t.lr_law.exponent, ", beta2 ",
              t.beta2, " (", t.sizes.size(), " sizes tuned)"));
    }
  // the variants an earlier sweep into this folder tuned, read from tuning.csv, so that
  // fit.json and the tuning chart hold every variant's tuning, not only this call's
  if (!o.tuning.lrs.empty()) {
    const std::string tuning_csv = o.out_dir + "/tuning.csv";
    const auto swept = [&](const std::string& v) {
      return std::find(o.variants.begin(), o.variants.end(), v) != o.variants.end();
    };
    const size_t first_read = res.tuning.size();
    for (const SweepRun& r : fs::exists(tuning_csv) ? read_sweep_csv(tuning_csv) : std::vector<SweepRun>{}) {
      if (swept(r.variant)) continue;  // tuned by this call: its runs are in already
      auto t = std::find_if(res.tuning.begin(), res.tuning.end(),
                            [&](const VariantTuning& vt) { return vt.variant == r.variant; });
      if (t == res.tuning.end()) {
        VariantTuning read;
        read.variant = r.variant;
        t = res.tuning.insert(t, read);
      }
      t->runs.push_back(r);
    }
    for (size_t i = first_read; i < res.tuning.size(); i++) analyse_tuning(res.tuning[i], o.tuning.beta2s);
  }
  if (o.tune_only) {
    if (!res.tuning.empty()) write_svg(o.out_dir + "/tuning.svg", tuning_chart(res.tuning));
    return res;
  }
  auto tuning_of = [&](const std::string& variant) -> const VariantTuning* {
    for (const auto& t : res.tuning)
      if (t.variant == variant) return &t;
    return nullptr;
  };
  // one grid run: recorded, or trained now
  auto grid_run = [&](const std::string& variant, const SweepShape& shape, double budget) {
    const std::string name = run_name(variant, shape, budget);
    for (const auto& r : res.runs)
      if (r.run == name) {
        res.skipped++;
        return;
      }
    const RunHyper h = sweep_hyper(o, tuning_of(variant), sweep_params(o.base, variant, shape));
    const Config cfg = sweep_config(o.base, variant, shape, budget, h);
    const SweepRun r = train_sweep_run(cfg, variant, o.data_dir, o.out_dir, name, o.log);
    append_sweep_csv(csv, r);
    res.runs.push_back(r);
    res.trained++;
  };
  for (const auto& variant : o.variants)
    for (const auto& shape : o.sizes)
      for (double budget : o.budgets) grid_run(variant, shape, budget);
  // bracketing: sizes beyond an edge that holds a budget's best loss
  for (const auto& variant : o.variants)
    for (double budget : o.budgets) {
      BracketStatus st{variant, budget, false, ""};
      int added[2] = {0, 0};  // below, above
      {  // sizes an earlier invocation added count against the limit, so a rerun adds none
        const std::vector<SweepRun> g = group_of(res.runs, variant, budget);
        double lo = INFINITY, hi = 0;
        const auto asked = [&](const SweepRun& r) {
          return std::any_of(o.sizes.begin(), o.sizes.end(),
                             [&](const SweepShape& s) { return s.layers == r.layers && s.d_model == r.d_model; });
        };
        for (const auto& r : g)
          if (asked(r)) lo = std::min(lo, r.params), hi = std::max(hi, r.params);
        for (const auto& r : g)
          if (!asked(r)) added[r.params > hi ? 1 : 0] += (r.params > hi || r.params < lo);
      }
      std::vector<std::string> notes;
      for (;;) {
        const std::vector<SweepRun> g = group_of(res.runs, variant, budget);
        size_t best = 0;
        for (size_t i = 1; i < g.size(); i++)
          if (g[i].loss < g[best].loss) best = i;
        if (g.size() >= 3 && best != 0 && best + 1 != g.size()) {
          st.bracketed = true;
          break;
        }
        const bool above = best + 1 == g.size() && g.size() > 1;
        const SweepShape edge{g[best].layers, g[best].d_model};
        const char* side = above ? "largest" : "smallest";
        if (o.bracket == 0) {
          notes.push_back(str("best at the ", side, " size ", shape_name(edge), " (bracketing off)"));
          break;
        }
        if (added[above] >= o.bracket) {
          notes.push_back(str("still best at the ", side, " size ", shape_name(edge), " after adding ", added[above]));
          break;
        }
        std::vector<SweepShape> taken;
        for (const auto& r : g) taken.push_back({r.layers, r.d_model});
        SweepShape next{};
        if (!neighbour_shape(o.base, variant, edge, above ? 2.0 : 0.5, taken, next)) {
          notes.push_back(str("best at the ", side, " size ", shape_name(edge), "; no sweep shape lies beyond it"));
          break;
        }
        Config cfg = sweep_config(o.base, variant, next, budget, sweep_hyper(o, nullptr, 1));
        if (cfg.train.steps < 10) {
          notes.push_back(str("best at the ", side, " size ", shape_name(edge), "; the next, ", shape_name(next),
                              ", gets only ", cfg.train.steps, " steps"));
          break;
        }
        log(str("sweep: ", variant, " at ", budget, " FLOPs is best at its ", side, " size ", shape_name(edge),
                "; adding ", shape_name(next)));
        notes.push_back(str("added ", shape_name(next)));
        grid_run(variant, next, budget);
        added[above]++;
      }
      for (size_t i = 0; i < notes.size(); i++) st.note += (i ? "; " : "") + notes[i];
      res.brackets.push_back(st);
    }
  for (const auto& variant : o.variants) {
    std::vector<RunRecord> recs;
    for (const auto& r : res.runs)
      if (r.variant == variant && std::isfinite(r.loss)) recs.push_back({r.params, r.tokens, r.flops, r.loss});
    res.variants.push_back(variant);
    try {
      res.fits.push_back(fit_isoflop(recs));
      res.fit_errors.push_back("");
    } catch (const Error& e) {
      res.fits.push_back({});
      res.fit_errors.push_back(e.what());
    }
  }
  // charts of the fitted variants
  std::vector<std::pair<std::string, IsoflopFit>> fitted;
  for (size_t v = 0; v < res.variants.size(); v++)
    if (res.fit_errors[v].empty()) fitted.push_back({res.variants[v], res.fits[v]});
  if (!fitted.empty()) {
    write_svg(o.out_dir + "/isoflop.svg", isoflop_chart(fitted));
    write_svg(o.out_dir + "/n_opt.svg", n_opt_chart(fitted));
  }
  if (!res.tuning.empty()) write_svg(o.out_dir + "/tuning.svg", tuning_chart(res.tuning));
  res.fit_json = sweep_fits(o, res);
  std::ofstream(o.out_dir + "/fit.json") << res.fit_json.dump(1) << "\n";
  return res;
}

}  // namespace fw
