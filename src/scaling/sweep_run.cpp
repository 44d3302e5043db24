#include "scaling/sweep_run.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "batching/loader.h"
#include "formats/token_file.h"
#include "nn/flops.h"
#include "nn/model.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "formats/run_folder.h"
#include "train/trainer.h"

namespace fw {

namespace fs = std::filesystem;

SweepShape parse_shape(const std::string& s) {
  const size_t x = s.find('x');
  FW_CHECK(x != std::string::npos, "sweep: size '", s, "' must be LAYERSxWIDTH, e.g. 2x64");
  // strtoll's end pointer points into the string it parsed: keep both parts alive
  const std::string layers = s.substr(0, x), width = s.substr(x + 1);
  char* end = nullptr;
  const long long L = std::strtoll(layers.c_str(), &end, 10);
  FW_CHECK(*end == '\0' && L >= 1, "sweep: size '", s, "': layers must be a positive integer");
  const long long d = std::strtoll(width.c_str(), &end, 10);
  FW_CHECK(*end == '\0' && d >= 32 && d % 32 == 0, "sweep: size '", s, "': width must be a multiple of 32");
  return {L, d};
}

std::string shape_name(const SweepShape& s) { return str(s.layers, "x", s.d_model); }

static Config shaped(const Config& base, const std::string& variant, const SweepShape& s) {
  Config c = base;
  c.model.n_layers = s.layers;
  c.model.d_model = s.d_model;
  c.model.n_heads = s.d_model / 32;
  c.model.mlp_hidden = 0;
  c.model.mod.enabled = variant == "mod";
  c.model.max_seq_len = std::max(c.model.max_seq_len, c.train.seq_len);
  return c;
}

double sweep_flops_per_token(const Config& base, const std::string& variant, const SweepShape& s) {
  const Config c = shaped(base, variant, s);
  return count_flops(c.model, c.train.seq_len).train_per_token();
}

double sweep_params(const Config& base, const std::string& variant, const SweepShape& s) {
  return double(Model::count_params(shaped(base, variant, s).model));
}

Config sweep_config(const Config& base, const std::string& variant, const SweepShape& s, double budget,
                    const RunHyper& h) {
  Config c = shaped(base, variant, s);
  const double tokens_per_step = double(c.train.batch_size * c.train.seq_len);
  c.train.steps = std::llround(budget / (sweep_flops_per_token(base, variant, s) * tokens_per_step));
  c.train.min_lr = h.lr * (base.train.min_lr / base.train.lr);
  c.train.lr = h.lr;
  c.train.beta2 = h.beta2;
  if (h.warmup_tokens_per_param > 0) {
    const double N = double(Model::count_params(c.model));
    const auto tokens_warmup = std::llround(h.warmup_tokens_per_param * N / tokens_per_step);
    c.train.warmup = std::clamp<int64_t>(tokens_warmup, 1, std::max<int64_t>(1, c.train.steps / 5));
  } else {
    c.train.warmup = std::min(c.train.warmup, std::max<int64_t>(1, c.train.steps / 10));
  }
  c.train.eval_every = 0;  // validation at the end only
  c.train.ckpt_every = std::max<int64_t>(1, c.train.steps / 4);
  return c;
}

SweepRun train_sweep_run(const Config& cfg, const std::string& variant, const std::string& data_dir,
                         const std::string& out_dir, const std::string& name,
                         const std::function<void(const std::string&)>& log) {
  const std::string dir = out_dir + "/" + name;
  double loss = NAN;
  const bool started = fs::exists(run_path(dir, run_file::model));
  if (started) {  // trained before but not recorded: finished, or stopped part-way
    LoadedModel lm = load_model(dir);
    if (lm.step == cfg.train.steps) {
      TokenLoader val(find_data_files(data_dir).val, cfg.model.vocab_size);
      Activations acts(*lm.model, cfg.train.micro_batch(), cfg.train.seq_len, false);
      loss = evaluate(*lm.model, acts, val, cfg.train.eval_tokens).loss;
    }
  }
  if (std::isnan(loss)) {
    TrainOptions t;
    t.data_dir = data_dir;
    t.run_dir = dir;
    t.resume = started;  // go on from its checkpoint
    t.log = log;
    if (log)
      log(str("sweep: ", name, ": ", cfg.train.steps, " steps, lr ", cfg.train.lr, ", beta2 ", cfg.train.beta2,
              ", warmup ", cfg.train.warmup, started ? " (resuming)" : ""));
    try {
      loss = run_training(cfg, t).val_loss;
    } catch (const Error& e) {
      // a learning rate too high for the model is a result of the search, not a failure
      if (std::string(e.what()).find("non-finite training loss") == std::string::npos) throw;
      if (log) log(str("sweep: ", name, " diverged: ", e.what()));
      loss = INFINITY;
    }
  }
  const double F = count_flops(cfg.model, cfg.train.seq_len).train_per_token();
  const double tokens = double(cfg.train.steps * cfg.train.batch_size * cfg.train.seq_len);
  const double N = double(Model::count_params(cfg.model));
  return {variant, cfg.model.n_layers, cfg.model.d_model, N, N - double(Model::count_embedding_params(cfg.model)),
          F * tokens, tokens, cfg.train.steps, cfg.train.lr, cfg.train.beta2, cfg.train.warmup, loss, name};
}

static const char* kHeader = "variant,layers,d_model,params,params_without_embeddings,flops,tokens,steps,lr,beta2,"
                             "warmup,loss,run";

// Sweeps before the tuning stage wrote these columns; their folders are still read
// (reports), not continued.
static const char* kOldHeader = "variant,layers,d_model,params,flops,tokens,steps,loss,run";

std::vector<SweepRun> read_sweep_csv(const std::string& path) {
  std::vector<SweepRun> runs;
  std::ifstream in(path);
  if (!in) return runs;
  std::string line;
  if (!std::getline(in, line)) return runs;
  const bool old = line == kOldHeader;
  FW_CHECK(old || line == kHeader, path, ":1: not a sweep's CSV (expected '", kHeader, "')");
  for (int no = 2; std::getline(in, line); no++) {
    if (line.empty()) continue;
    std::istringstream row(line);
    std::vector<std::string> c;
    for (std::string cell; std::getline(row, cell, ',');) c.push_back(cell);
    auto num = [&](size_t i) {
      size_t used = 0;
      const double v = std::stod(c.at(i), &used);
      if (used != c[i].size()) throw std::invalid_argument(c[i]);
      return v;
    };
    auto integer = [&](size_t i) {
      const double v = num(i);
      if (v != std::floor(v)) throw std::invalid_argument(c[i]);
      return int64_t(v);
    };
    try {
      SweepRun r;
      if (old) {
        if (c.size() != 9) throw std::invalid_argument("columns");
        r = {c[0], integer(1), integer(2), num(3), NAN, num(4), num(5), integer(6), NAN, NAN, 0, num(7), c[8]};
      } else {
        if (c.size() != 13) throw std::invalid_argument("columns");
        r = {c[0],      integer(1), integer(2), num(3), num(4),      num(5), num(6),
             integer(7), num(8),    num(9),     integer(10), num(11), c[12]};
      }
      if (r.run.empty() || (r.variant != "dense" && r.variant != "mod")) throw std::invalid_argument("variant");
      runs.push_back(r);
    } catch (const std::exception&) {
      throw Error(str(path, ":", no, ": malformed row"));
    }
  }
  return runs;
}

void check_sweep_csv_appendable(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return;
  FW_CHECK(line == kHeader, path, ":1: written by a flopwise sweep before the tuning stage (no lr, beta2, warmup "
           "columns), or not a sweep's CSV; start a new sweep folder");
}

void append_sweep_csv(const std::string& path, const SweepRun& r) {
  check_sweep_csv_appendable(path);
  const bool fresh = !fs::exists(path) || fs::file_size(path) == 0;
  std::ofstream out(path, std::ios::app);
  out.precision(17);  // round-trips every double: a reread sweep analyses the numbers it had
  if (fresh) out << kHeader << "\n";
  out << r.variant << "," << r.layers << "," << r.d_model << "," << r.params << "," << r.params_without_embeddings
      << "," << r.flops << "," << r.tokens << "," << r.steps << "," << r.lr << "," << r.beta2 << "," << r.warmup << ","
      << r.loss << "," << r.run << "\n";
  FW_CHECK(out, path, ": write failed");
}

}  // namespace fw
