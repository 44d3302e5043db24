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
  const Config base = f.config.build();
  // this machine's training rate: its measured fp32 sgemm peak × the MFU flopwise
  // sustains in training (86-90% measured on the bench config; --mfu)
  const double rate = sgemm_peak_flops() * f.mfu;
  const double C = f.flops > 0 ? f.flops : f.hours * 3600 * rate;
  const nlohmann::json j = plan_report(f.law, f.fit, f.variant, C, base.model, base.train, rate);
  if (f.common.json) {
    print_json(j);
    return;
  }
  std::printf("budget %.3g FLOPs (%.2f hours here at %.0f GFLOP/s); law '%s'\n", C, C / rate / 3600, rate / 1e9,
              f.law.c_str());
  const nlohmann::json &law_of = j["laws"], &variants = j["variants"];
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
  for (const auto& [v, rows] : variants.items())
    if (!law_of.contains(v))
      std::printf("(no %s law in '%s': its shapes are chosen by the %s law and show the tokens the budget buys "
                  "them; their loss is for a %s sweep to measure)\n", v.c_str(), f.law.c_str(),
                  j["law_variant"].get<std::string>().c_str(), v.c_str());
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
