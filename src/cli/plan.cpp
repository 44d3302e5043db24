// flopwise plan: which model and how many tokens for a training budget (in FLOPs, or in
// hours of this machine), under a scaling law, as concrete flopwise configs.
#include <cmath>
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "kernels/matmul.h"
#include "scaling/plan.h"

namespace fw::cli {

namespace {
struct PlanFlags {
  double flops = 0, hours = 0, mfu = 0.85;
  std::string law = "epoch", fit = "approach3", variant;
  ConfigFlags config;
  CommonFlags common;
};

void run_plan(const PlanFlags& f) {
  f.common.apply();
  FW_CHECK((f.flops > 0) != (f.hours > 0), "plan: give --flops C or --hours H (one of them, positive)");
  FW_CHECK(f.mfu > 0 && f.mfu <= 1, "plan: --mfu must be in (0, 1]");
  FW_CHECK(f.variant.empty() || f.variant == "dense" || f.variant == "mod", "plan: --variant '", f.variant,
           "' must be dense or mod");
  const std::map<std::string, ScalingLaw> laws = scaling_laws(f.law, f.fit);
  FW_CHECK(f.variant.empty() || laws.count(f.variant), "plan: --law ", f.law, " holds no ", f.variant,
           " law (it has ", laws.begin()->first, laws.size() > 1 ? " and more" : "", ")");
  const Config base = f.config.build();
  // this machine's training rate: its measured fp32 sgemm peak × the MFU flopwise
  // sustains in training (86-90% measured on the bench config; --mfu)
  const double rate = sgemm_peak_flops() * f.mfu;
  const double C = f.flops > 0 ? f.flops : f.hours * 3600 * rate;
  const int64_t T = base.train.seq_len, tokens_per_step = base.train.batch_size * T;
  // The variants planned: the one asked for, else dense and MoD. A variant without a law
  // of its own (MoD under a published law) gets dense's law for choosing shapes and no
  // predicted loss: what it reaches is for a MoD sweep to measure.
  const std::vector<std::string> planned = f.variant.empty() ? std::vector<std::string>{"dense", "mod"}
                                                             : std::vector<std::string>{f.variant};
  nlohmann::json variants = nlohmann::json::object(), law_of = nlohmann::json::object();
  for (const std::string& v : planned) {
    const bool own = laws.count(v) > 0;
    const ScalingLaw& law = own ? laws.at(v) : laws.count("dense") ? laws.at("dense") : laws.begin()->second;
    ModelConfig m = base.model;
    m.mod.enabled = v == "mod";
    nlohmann::json rows = nlohmann::json::array();
    for (const PlannedModel& p : plan_models(law, C, m, T))
      rows.push_back({{"n_layers", p.model.n_layers}, {"d_model", p.model.d_model}, {"n_heads", p.model.n_heads},
                      {"params", p.params}, {"train_flops_per_token", p.train_flops_per_token}, {"tokens", p.tokens},
                      {"steps", std::llround(p.tokens / double(tokens_per_step))},
                      {"predicted_loss", own ? nlohmann::json(p.predicted_loss) : nlohmann::json(nullptr)}});
    variants[v] = rows;
    if (own)
      law_of[v] = {{"E", law.E}, {"A", law.A}, {"B", law.B}, {"alpha", law.alpha}, {"beta", law.beta},
                   {"n_opt", law.n_opt(C)}, {"d_opt", law.d_opt(C)}, {"predicted_loss", law.loss(law.n_opt(C), law.d_opt(C))}};
  }
  // the first law planned (dense when there is one) also at the top level, as before
  const std::string main = law_of.contains("dense") ? "dense" : law_of.begin().key();
  const auto& L = law_of[main];
  nlohmann::json j = {{"flops", C},
                      {"law", {{"E", L["E"]}, {"A", L["A"]}, {"B", L["B"]}, {"alpha", L["alpha"]}, {"beta", L["beta"]}}},
                      {"law_variant", main},
                      {"laws", law_of},
                      {"n_opt", L["n_opt"]},
                      {"d_opt", L["d_opt"]},
                      {"predicted_loss", L["predicted_loss"]},
                      {"training_flops_per_s", rate},
                      {"hours", C / rate / 3600},
                      {"variants", variants}};
  if (f.common.json) {
    print_json(j);
    return;
  }
  std::printf("budget %.3g FLOPs (%.2f hours here at %.0f GFLOP/s); law '%s'\n", C, C / rate / 3600, rate / 1e9,
              f.law.c_str());
  for (const auto& [v, l] : law_of.items())
    std::printf("  %s law: N_opt %.3g, D_opt %.3g (%.1f tokens per parameter, at C = 6ND), loss %.4f\n", v.c_str(),
                l["n_opt"].get<double>(), l["d_opt"].get<double>(), l["d_opt"].get<double>() / l["n_opt"].get<double>(),
                l["predicted_loss"].get<double>());
  std::printf("| variant | layers | d_model | heads | params | training FLOPs/token (exact) | tokens | steps | "
              "predicted loss |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& [v, rows] : variants.items())
    for (const auto& r : rows)
      std::printf("| %s | %lld | %lld | %lld | %.3g | %.3g | %.3g | %lld | %s |\n", v.c_str(),
                  (long long)r["n_layers"].get<int64_t>(), (long long)r["d_model"].get<int64_t>(),
                  (long long)r["n_heads"].get<int64_t>(), r["params"].get<double>(),
                  r["train_flops_per_token"].get<double>(), r["tokens"].get<double>(),
                  (long long)r["steps"].get<int64_t>(),
                  r["predicted_loss"].is_null() ? "-" : str(r["predicted_loss"].get<double>()).c_str());
  for (const auto& v : planned)
    if (!law_of.contains(v))
      std::printf("(no %s law in '%s': its shapes are chosen by the %s law and show the tokens the budget buys "
                  "them; their loss is for a %s sweep to measure)\n", v.c_str(), f.law.c_str(), main.c_str(), v.c_str());
}
}  // namespace

void register_plan(CLI::App& app) {
  auto f = std::make_shared<PlanFlags>();
  auto* sub = app.add_subcommand("plan", "compute-optimal model and tokens for a training budget");
  sub->add_option("--flops", f->flops, "training budget in FLOPs");
  sub->add_option("--hours", f->hours, "training budget in hours of this machine");
  sub->add_option("--law", f->law, "epoch (default), hoffmann, hoffmann-tex (unrounded), a `flopwise fit --json` "
                  "output file, or a sweep's fit.json (a law per variant)");
  sub->add_option("--variant", f->variant, "plan only dense or mod (a sweep's fit.json holds a law for each)");
  sub->add_option("--fit", f->fit, "which fitted law of a --law file: approach3 (default) or grid");
  sub->add_option("--mfu", f->mfu, "training MFU assumed for --hours and the time estimates");
  f->config.add(sub);
  f->common.add(sub);
  sub->callback([f]() { run_plan(*f); });
}

}  // namespace fw::cli
