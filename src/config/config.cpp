#include "config/config.h"

#include <cmath>
#include <fstream>
#include <variant>
#include <vector>

#include "core/error.h"
#include "core/files.h"

namespace fw {

namespace {

using FieldPtr =
    std::variant<int64_t*, double*, bool*, ModelKind*, HeadKind*, MlpKind*, Gate*, Causal*, MatmulPrecision*>;
struct Field {
  std::string section, key;
  FieldPtr ptr;
};

// The one list of every configurable field: reading, writing and --set all use it.
std::vector<Field> fields(Config& c) {
  ModelConfig& m = c.model;
  TrainConfig& t = c.train;
  ModConfig& d = c.model.mod;
  FffConfig& f = c.model.fff;
  return {
      {"model", "kind", &m.kind},               {"model", "head", &m.head},
      {"model", "labels", &m.labels},
      {"model", "vocab_size", &m.vocab_size},   {"model", "d_model", &m.d_model},
      {"model", "n_layers", &m.n_layers},       {"model", "n_heads", &m.n_heads},
      {"model", "max_seq_len", &m.max_seq_len}, {"model", "mlp_hidden", &m.mlp_hidden},
      {"model", "tie_embeddings", &m.tie_embeddings}, {"model", "mlp", &m.mlp},
      {"train", "batch_size", &t.batch_size},   {"train", "seq_len", &t.seq_len},
      {"train", "steps", &t.steps},             {"train", "lr", &t.lr},
      {"train", "min_lr", &t.min_lr},           {"train", "warmup", &t.warmup},
      {"train", "beta1", &t.beta1},             {"train", "beta2", &t.beta2},
      {"train", "weight_decay", &t.weight_decay}, {"train", "grad_clip", &t.grad_clip},
      {"train", "grad_accum", &t.grad_accum},   {"train", "seed", &t.seed},
      {"train", "eval_every", &t.eval_every},   {"train", "eval_tokens", &t.eval_tokens},
      {"train", "ckpt_every", &t.ckpt_every},   {"train", "log_every", &t.log_every},
      {"train", "matmul_bf16", &t.matmul_bf16}, {"train", "mask_rate", &t.mask_rate},
      {"mod", "enabled", &d.enabled},           {"mod", "capacity", &d.capacity},
      {"mod", "every", &d.every},               {"mod", "gate", &d.gate},
      {"mod", "causal", &d.causal},             {"mod", "bce_weight", &d.bce_weight},
      {"mod", "predictor_weight", &d.predictor_weight},
      {"mod", "predictor_hidden", &d.predictor_hidden},
      {"fff", "trees", &f.trees},               {"fff", "depth", &f.depth},
      {"fff", "leaf_width", &f.leaf_width},     {"fff", "hardening", &f.hardening},
      {"fff", "transpose_prob", &f.transpose_prob},
  };
}

void set_field(const Field& f, const nlohmann::json& v, const std::string& origin) {
  const std::string name = f.section + "." + f.key;
  std::visit(
      [&](auto* p) {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, MatmulPrecision>) {  // true, false or "auto"
          FW_CHECK(v.is_boolean() || v == "auto", origin, ": ", name, " must be true, false or \"auto\", got ",
                   v.dump());
          *p = v.is_boolean() ? (v.get<bool>() ? MatmulPrecision::bf16 : MatmulPrecision::fp32)
                              : MatmulPrecision::automatic;
        } else if constexpr (std::is_enum_v<T>) {  // a named choice (nn/config.h)
          FW_CHECK(v.is_string(), origin, ": ", name, " must be a string, got ", v.dump());
          FW_CHECK(parse_name(v.get<std::string>(), *p), origin, ": ", name, " = '", v.get<std::string>(),
                   "' must be ", name_choices<T>());
        } else if constexpr (std::is_same_v<T, bool>) {
          FW_CHECK(v.is_boolean(), origin, ": ", name, " must be true or false, got ", v.dump());
          *p = v.get<bool>();
        } else if constexpr (std::is_same_v<T, int64_t>) {
          // a float that is a whole number inside int64's range (casting one outside is undefined)
          const double d = v.is_number_float() ? v.get<double>() : 0.0;
          const bool integral = v.is_number_integer() || (v.is_number_float() && std::fabs(d) < 0x1p63 && d == std::trunc(d));
          FW_CHECK(integral, origin, ": ", name, " must be an integer, got ", v.dump());
          *p = v.is_number_integer() ? v.get<int64_t>() : int64_t(v.get<double>());
        } else {
          FW_CHECK(v.is_number(), origin, ": ", name, " must be a number, got ", v.dump());
          *p = v.get<double>();
        }
      },
      f.ptr);
}

const Field& find_field(const std::vector<Field>& all, const std::string& section,
                        const std::string& key, const std::string& origin) {
  bool section_known = false;
  for (const auto& f : all) {
    if (f.section == section) section_known = true;
    if (f.section == section && f.key == key) return f;
  }
  if (!section_known) fail(origin, ": unknown config section '", section, "'");
  fail(origin, ": unknown config field '", section, ".", key, "'");
}

}  // namespace

void TrainConfig::validate() const {
  auto positive = [](const char* field, int64_t v) {
    FW_CHECK(v > 0, "config: train.", field, " = ", v, " must be positive");
  };
  positive("batch_size", batch_size);
  positive("seq_len", seq_len);
  positive("steps", steps);
  positive("grad_accum", grad_accum);
  positive("eval_tokens", eval_tokens);
  positive("log_every", log_every);
  FW_CHECK(batch_size % grad_accum == 0, "config: train.grad_accum = ", grad_accum,
           " does not divide train.batch_size = ", batch_size);
  FW_CHECK(lr > 0 && std::isfinite(lr), "config: train.lr = ", lr, " must be positive");
  FW_CHECK(min_lr >= 0 && min_lr <= lr, "config: train.min_lr = ", min_lr, " must be in [0, train.lr]");
  FW_CHECK(warmup >= 0, "config: train.warmup = ", warmup, " must be >= 0");
  FW_CHECK(beta1 >= 0 && beta1 < 1, "config: train.beta1 = ", beta1, " must be in [0, 1)");
  FW_CHECK(beta2 >= 0 && beta2 < 1, "config: train.beta2 = ", beta2, " must be in [0, 1)");
  FW_CHECK(weight_decay >= 0, "config: train.weight_decay = ", weight_decay, " must be >= 0");
  FW_CHECK(grad_clip >= 0, "config: train.grad_clip = ", grad_clip, " must be >= 0 (0: off)");
  FW_CHECK(eval_every >= 0, "config: train.eval_every = ", eval_every, " must be >= 0");
  FW_CHECK(ckpt_every >= 0, "config: train.ckpt_every = ", ckpt_every, " must be >= 0");
  FW_CHECK(seed >= 0, "config: train.seed = ", seed, " must be >= 0");
  FW_CHECK(mask_rate > 0 && mask_rate < 1, "config: train.mask_rate = ", mask_rate, " must be in (0, 1)");
}

void Config::validate() const {
  model.validate();
  train.validate();
  FW_CHECK(train.seq_len <= model.max_seq_len, "config: train.seq_len = ", train.seq_len,
           " exceeds model.max_seq_len = ", model.max_seq_len);
  FW_CHECK(!model.encoder() || train.seq_len >= 2, "config: train.seq_len = ", train.seq_len,
           " leaves an encoder no text: a sequence is [CLS] and at least one token");
}

bool TrainConfig::bf16() const {
  FW_CHECK(matmul_bf16 != MatmulPrecision::automatic,
           "train.matmul_bf16 = \"auto\" is decided when training starts; this config has no decision");
  return matmul_bf16 == MatmulPrecision::bf16;
}

nlohmann::json to_json(const Config& c) {
  Config copy = c;
  nlohmann::json j = nlohmann::json::object();
  for (const auto& f : fields(copy))
    std::visit(
        [&](auto* p) {
          using T = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_same_v<T, MatmulPrecision>) {
            if (*p == MatmulPrecision::automatic) j[f.section][f.key] = "auto";
            else j[f.section][f.key] = *p == MatmulPrecision::bf16;
          } else if constexpr (std::is_enum_v<T>) {
            j[f.section][f.key] = name_of(*p);
          } else {
            j[f.section][f.key] = *p;
          }
        },
        f.ptr);
  return j;
}

void apply_json(Config& c, const nlohmann::json& j, const std::string& origin) {
  FW_CHECK(j.is_object(), origin, ": config must be a JSON object of sections");
  auto all = fields(c);
  for (const auto& [section, body] : j.items()) {
    if (!body.is_object()) {
      find_field(all, section, "", origin);  // unknown section fails by name
      fail(origin, ": config section '", section, "' must be an object");
    }
    for (const auto& [key, value] : body.items())
      set_field(find_field(all, section, key, origin), value, origin);
  }
}

void apply_config_file(Config& c, const std::string& path) {
  require_readable_file(path, "config file");
  std::ifstream in(path);
  FW_CHECK(in, path, ": cannot open config file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
  apply_json(c, j, path);
}

void apply_set(Config& c, const std::string& assignment) {
  const std::string origin = "--set " + assignment;
  const auto eq = assignment.find('=');
  const auto dot = assignment.find('.');
  FW_CHECK(eq != std::string::npos && dot != std::string::npos && dot < eq, origin,
           ": expected section.key=value");
  const std::string section = assignment.substr(0, dot);
  const std::string key = assignment.substr(dot + 1, eq - dot - 1);
  const std::string text = assignment.substr(eq + 1);
  nlohmann::json v;
  try {
    v = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    v = text;  // not JSON: a plain string (a named choice, such as mod.gate=raw)
  }
  auto all = fields(c);
  set_field(find_field(all, section, key, origin), v, origin);
}

}  // namespace fw
