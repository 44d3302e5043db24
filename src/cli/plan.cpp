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
  std::string law = "epoch";
  ConfigFlags config;
  CommonFlags common;
};

void run_plan(const PlanFlags& f) {
  f.common.apply();
  FW_CHECK((f.flops > 0) != (f.hours > 0), "plan: give --flops C or --hours H (one of them, positive)");
  FW_CHECK(f.mfu > 0 && f.mfu <= 1, "plan: --mfu must be in (0, 1]");
  const ScalingLaw law = scaling_law(f.law);
  const Config base = f.config.build();
  // this machine's training rate: its measured fp32 sgemm peak × the MFU flopwise
  // sustains in training (86-90% measured on the bench config; --mfu)
  const double rate = sgemm_peak_flops() * f.mfu;
  const double C = f.flops > 0 ? f.flops : f.hours * 3600 * rate;
  const int64_t T = base.train.seq_len, tokens_per_step = base.train.batch_size * T;
  nlohmann::json variants = nlohmann::json::object();
  for (bool mod : {false, true}) {
    ModelConfig m = base.model;
    m.mod.enabled = mod;
    nlohmann::json rows = nlohmann::json::array();
    for (const PlannedModel& p : plan_models(law, C, m, T)) {
      rows.push_back({{"n_layers", p.model.n_layers}, {"d_model", p.model.d_model}, {"n_heads", p.model.n_heads},
                      {"params", p.params}, {"train_flops_per_token", p.train_flops_per_token}, {"tokens", p.tokens},
                      {"steps", std::llround(p.tokens / double(tokens_per_step))},
                      {"predicted_loss", mod ? nlohmann::json(nullptr) : nlohmann::json(p.predicted_loss)}});
    }
    variants[mod ? "mod" : "dense"] = rows;
  }
  nlohmann::json j = {{"flops", C},
                      {"law", {{"E", law.E}, {"A", law.A}, {"B", law.B}, {"alpha", law.alpha}, {"beta", law.beta}}},
                      {"n_opt", law.n_opt(C)},
                      {"d_opt", law.d_opt(C)},
                      {"predicted_loss", law.loss(law.n_opt(C), law.d_opt(C))},
                      {"training_flops_per_s", rate},
                      {"hours", C / rate / 3600},
                      {"variants", variants}};
  if (f.common.json) {
    print_json(j);
    return;
  }
  std::printf("budget %.3g FLOPs (%.2f hours here at %.0f GFLOP/s); law '%s': N_opt %.3g, D_opt %.3g (%.1f tokens "
              "per parameter), loss %.4f\n",
              C, C / rate / 3600, rate / 1e9, f.law.c_str(), law.n_opt(C), law.d_opt(C), law.d_opt(C) / law.n_opt(C),
              law.loss(law.n_opt(C), law.d_opt(C)));
  std::printf("| variant | layers | d_model | heads | params | training FLOPs/token (exact) | tokens | steps | "
              "predicted loss |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const char* v : {"dense", "mod"})
    for (const auto& r : variants[v])
      std::printf("| %s | %lld | %lld | %lld | %.3g | %.3g | %.3g | %lld | %s |\n", v,
                  (long long)r["n_layers"].get<int64_t>(), (long long)r["d_model"].get<int64_t>(),
                  (long long)r["n_heads"].get<int64_t>(), r["params"].get<double>(),
                  r["train_flops_per_token"].get<double>(), r["tokens"].get<double>(),
                  (long long)r["steps"].get<int64_t>(),
                  r["predicted_loss"].is_null() ? "-" : str(r["predicted_loss"].get<double>()).c_str());
  std::printf("(the law describes dense models; the MoD rows show the shapes and the tokens the same budget buys "
              "them: their loss is for a MoD sweep to measure)\n");
}
}  // namespace

void register_plan(CLI::App& app) {
  auto f = std::make_shared<PlanFlags>();
  auto* sub = app.add_subcommand("plan", "compute-optimal model and tokens for a training budget");
  sub->add_option("--flops", f->flops, "training budget in FLOPs");
  sub->add_option("--hours", f->hours, "training budget in hours of this machine");
  sub->add_option("--law", f->law, "epoch (default), hoffmann, hoffmann-tex (unrounded), or a `flopwise fit --json` output file");
  sub->add_option("--mfu", f->mfu, "training MFU assumed for --hours and the time estimates");
  f->config.add(sub);
  f->common.add(sub);
  sub->callback([f]() { run_plan(*f); });
}

}  // namespace fw::cli
