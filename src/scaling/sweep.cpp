#include "scaling/sweep.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "nn/flops.h"
#include "nn/model.h"
#include "data/loader.h"
#include "data/token_file.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "scaling/svg_chart.h"
#include "train/trainer.h"

namespace fw {

namespace fs = std::filesystem;

SweepShape parse_shape(const std::string& s) {
  const size_t x = s.find('x');
  FW_CHECK(x != std::string::npos, "sweep: size '", s, "' must be LAYERSxWIDTH, e.g. 2x64");
  char* end = nullptr;
  const long long L = std::strtoll(s.substr(0, x).c_str(), &end, 10);
  FW_CHECK(*end == '\0' && L >= 1, "sweep: size '", s, "': layers must be a positive integer");
  const long long d = std::strtoll(s.substr(x + 1).c_str(), &end, 10);
  FW_CHECK(*end == '\0' && d >= 32 && d % 32 == 0, "sweep: size '", s, "': width must be a multiple of 32");
  return {L, d};
}

Config sweep_config(const SweepOptions& o, const std::string& variant, const SweepShape& s, double budget) {
  Config c = o.base;
  c.model.n_layers = s.layers;
  c.model.d_model = s.d_model;
  c.model.n_heads = s.d_model / 32;
  c.model.mlp_hidden = 0;
  c.model.mod.enabled = variant == "mod";
  c.model.max_seq_len = std::max(c.model.max_seq_len, c.train.seq_len);
  const double per_step = count_flops(c.model, c.train.seq_len).train_per_token() * double(c.train.batch_size * c.train.seq_len);
  c.train.steps = std::llround(budget / per_step);
  c.train.warmup = std::min(c.train.warmup, std::max<int64_t>(1, c.train.steps / 10));
  c.train.eval_every = 0;  // validation at the end only
  c.train.ckpt_every = std::max<int64_t>(1, c.train.steps / 4);
  return c;
}

static const char* kHeader = "variant,layers,d_model,params,flops,tokens,steps,loss,run";

std::vector<SweepRun> read_sweep_csv(const std::string& path) {
  std::vector<SweepRun> runs;
  std::ifstream in(path);
  if (!in) return runs;
  std::string line;
  std::getline(in, line);
  FW_CHECK(line == kHeader, path, ":1: not a sweep's runs.csv (expected '", kHeader, "')");
  for (int no = 2; std::getline(in, line); no++) {
    if (line.empty()) continue;
    std::istringstream row(line);
    SweepRun r;
    std::string cell[9];
    for (auto& c : cell) std::getline(row, c, ',');
    try {
      r = {cell[0], cell[8], std::stoll(cell[1]), std::stoll(cell[2]), std::stoll(cell[6]),
           std::stod(cell[3]), std::stod(cell[4]), std::stod(cell[5]), std::stod(cell[7])};
    } catch (const std::exception&) {
      throw Error(str(path, ":", no, ": malformed row"));
    }
    runs.push_back(r);
  }
  return runs;
}

SweepResult run_sweep(const SweepOptions& o) {
  FW_CHECK(!o.budgets.empty() && !o.sizes.empty() && !o.variants.empty(), "sweep: give budgets, sizes and variants");
  for (const auto& v : o.variants) FW_CHECK(v == "dense" || v == "mod", "sweep: variant '", v, "' must be dense or mod");
  for (double b : o.budgets) FW_CHECK(b > 0 && std::isfinite(b), "sweep: budget ", b, " must be positive");
  fs::create_directories(o.out_dir);
  const std::string csv = o.out_dir + "/runs.csv";
  SweepResult res;
  res.runs = read_sweep_csv(csv);
  if (res.runs.empty()) std::ofstream(csv, std::ios::trunc) << kHeader << "\n";
  // every run's length is checked before any trains
  for (const auto& variant : o.variants)
    for (const auto& shape : o.sizes)
      for (double budget : o.budgets) {
        const Config cfg = sweep_config(o, variant, shape, budget);
        cfg.validate();  // e.g. MoD routing no block of a 1-layer model
        FW_CHECK(cfg.train.steps >= 10, "sweep: ", variant, " ", shape.layers, "x", shape.d_model, " at ", budget,
                 " FLOPs gets only ", cfg.train.steps, " steps; raise the budget or shrink the model or batch");
      }
  for (const auto& variant : o.variants)
    for (const auto& shape : o.sizes)
      for (double budget : o.budgets) {
        const Config cfg = sweep_config(o, variant, shape, budget);
        const std::string name = str(variant, "_", shape.layers, "x", shape.d_model, "_C", budget);
        bool done = false;
        for (const auto& r : res.runs) done |= r.run == name;
        if (done) {
          res.skipped++;
          continue;
        }
        const std::string dir = o.out_dir + "/" + name;
        double loss = NAN;
        const bool started = fs::exists(dir + "/model.safetensors");
        if (started) {  // trained before but not recorded: finished, or stopped part-way
          LoadedModel lm = load_model(dir);
          if (lm.step == cfg.train.steps) {
            TokenLoader val(find_data_files(o.data_dir).val, cfg.model.vocab_size);
            Activations acts(*lm.model, cfg.train.micro_batch(), cfg.train.seq_len, false);
            loss = evaluate(*lm.model, acts, val, cfg.train.eval_tokens).loss;
          }
        }
        if (std::isnan(loss)) {
          TrainOptions t;
          t.data_dir = o.data_dir;
          t.run_dir = dir;
          t.resume = started;  // go on from its checkpoint
          t.log = o.log;
          if (o.log) o.log(str("sweep: ", name, ": ", cfg.train.steps, " steps", started ? " (resuming)" : ""));
          loss = run_training(cfg, t).val_loss;
        }
        const double F = count_flops(cfg.model, cfg.train.seq_len).train_per_token();
        const double tokens = double(cfg.train.steps * cfg.train.batch_size * cfg.train.seq_len);
        SweepRun r{variant, name, shape.layers, shape.d_model, cfg.train.steps,
                   double(Model::count_params(cfg.model)), F * tokens, tokens, loss};
        std::ofstream out(csv, std::ios::app);
        out.precision(10);
        out << variant << "," << r.layers << "," << r.d_model << "," << r.params << ","
            << r.flops << "," << r.tokens << "," << r.steps << "," << r.loss << "," << name << "\n";
        FW_CHECK(out, csv, ": write failed");
        res.runs.push_back(r);
        res.trained++;
      }
  for (const auto& variant : o.variants) {
    std::vector<RunRecord> recs;
    for (const auto& r : res.runs)
      if (r.variant == variant) recs.push_back({r.params, r.tokens, r.flops, r.loss});
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
  return res;
}

}  // namespace fw
