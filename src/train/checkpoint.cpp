#include "train/checkpoint.h"

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "formats/atomic_file.h"
#include "formats/safetensors.h"
#include "formats/run_folder.h"

namespace fw {

namespace fs = std::filesystem;

static constexpr const char* kFormat = "flopwise-1";

std::string model_file(const std::string& run_or_file) {
  if (fs::is_directory(run_or_file)) return run_path(run_or_file, run_file::model);
  return run_or_file;
}

static int64_t parse_int(const SafetensorsFile& f, const std::string& key) {
  const std::string& s = f.meta(key);
  try {
    size_t used = 0;
    long long v = std::stoll(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  fail(f.path(), ": metadata '", key, "' = '", s, "' is not an integer");
}

// An encoder's special tokens by name: what a reader of the file needs to feed it
// ([CLS], [MASK], ...) without knowing the rule that places them (nn/config.h).
static std::string special_tokens_json(const ModelConfig& m) {
  const SpecialTokens sp = m.special_tokens();
  return nlohmann::json({{"[PAD]", sp.pad}, {"[CLS]", sp.cls}, {"[SEP]", sp.sep}, {"[MASK]", sp.mask}}).dump();
}

static std::map<std::string, std::string> common_meta(const Config& cfg, const std::string& tokenizer,
                                                      int64_t step) {
  std::map<std::string, std::string> meta = {
      {"format", "pt"},  // lets PyTorch's safetensors loader accept it
      {"flopwise.format", kFormat},
      {"flopwise.config", to_json(cfg).dump()},
      {"flopwise.tokenizer", tokenizer},
      {"flopwise.step", std::to_string(step)},
  };
  if (cfg.model.encoder()) meta["flopwise.special_tokens"] = special_tokens_json(cfg.model);
  return meta;
}

// Writes PATH's temporary (write_safetensors_temp); the caller commits it.
static std::string write_model_temp(const std::string& path, const Model& model, const Config& cfg,
                                    const std::string& tokenizer, int64_t step) {
  auto meta = common_meta(cfg, tokenizer, step);
  if (!model.calibration.empty())
    meta["flopwise.calibration"] =
        nlohmann::json({{"threshold", model.calibration.threshold}, {"tokens", model.calibration.tokens}}).dump();
  std::vector<SafeTensor> weights;
  for (const auto& t : model.tensors) weights.push_back({t.name, t.shape, model.params.data() + t.offset});
  return write_safetensors_temp(path, weights, meta);
}

void save_checkpoint(const std::string& run_dir, const Model& model, const Config& cfg,
                     const std::string& tokenizer, const AdamW& opt, const TrainingState& st) {
  std::vector<SafeTensor> moments;
  for (const auto& t : model.tensors) {
    moments.push_back({"adamw.m." + t.name, t.shape, opt.m.data() + t.offset});
    moments.push_back({"adamw.v." + t.name, t.shape, opt.v.data() + t.offset});
  }
  auto state_meta = common_meta(cfg, tokenizer, st.step);
  state_meta["flopwise.data_pos"] = std::to_string(st.data_pos);
  state_meta["flopwise.data_dir"] = st.data_dir;
  state_meta["flopwise.train_seconds"] = std::to_string(st.train_seconds);
  state_meta["flopwise.adamw_step"] = std::to_string(opt.step);
  for (int i = 0; i < 4; i++) state_meta["flopwise.rng" + std::to_string(i)] = std::to_string(st.rng[size_t(i)]);
  const std::string state = run_path(run_dir, run_file::state), model_path = run_path(run_dir, run_file::model);
  const std::string state_tmp = write_safetensors_temp(state, moments, state_meta);
  std::string model_tmp;
  try {
    model_tmp = write_model_temp(model_path, model, cfg, tokenizer, st.step);
  } catch (const Error&) {
    std::error_code ec;
    fs::remove(state_tmp, ec);  // the previous checkpoint stays as it was
    throw;
  }
  commit_temp(state_tmp, state);  // the commit point (checkpoint.h)
  commit_temp(model_tmp, model_path);
}

std::string finish_interrupted_checkpoint(const std::string& run_dir) {
  const std::string state = run_path(run_dir, run_file::state), model = run_path(run_dir, run_file::model);
  const std::string model_tmp = temp_name(model), state_tmp = temp_name(state);
  std::string done;
  if (fs::exists(model_tmp) && fs::exists(state) && fs::exists(model)) {
    try {
      const int64_t want = parse_int(SafetensorsFile(state), "flopwise.step");
      const SafetensorsFile tmp(model_tmp);  // whole and well formed, or it throws
      if (parse_int(SafetensorsFile(model), "flopwise.step") != want && parse_int(tmp, "flopwise.step") == want) {
        commit_temp(model_tmp, model);
        done = str("finished the checkpoint of step ", want, " that a crash interrupted (", model_tmp, " → ",
                   run_file::model, ")");
      }
    } catch (const Error&) {
      // not the interrupted pair: a temporary torn while written; resume checks the pair
    }
  }
  std::error_code ec;
  for (const std::string& t : {model_tmp, state_tmp}) fs::remove(t, ec);
  return done;
}

void save_model(const std::string& run_or_file, const Model& model, const Config& cfg,
                const std::string& tokenizer, int64_t step) {
  const std::string path = model_file(run_or_file);
  commit_temp(write_model_temp(path, model, cfg, tokenizer, step), path);
}

// The "flopwise.calibration" metadata: {"threshold": [n_layers floats, 0 where a layer
// is not routed], "tokens": N}.
static CausalCalibration parse_calibration(const std::string& path, const std::string& text,
                                           const ModelConfig& mc) {
  const std::string where = path + ": metadata 'flopwise.calibration'";
  CausalCalibration cal;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    FW_CHECK(j.is_object() && j.contains("threshold") && j["threshold"].is_array() && j.contains("tokens") &&
                 j["tokens"].is_number_integer(),
             where, ": expected {\"threshold\": [...], \"tokens\": N}");
    FW_CHECK(int64_t(j["threshold"].size()) == mc.n_layers, where, ": ", j["threshold"].size(),
             " thresholds for ", mc.n_layers, " layers");
    for (const auto& v : j["threshold"]) {
      FW_CHECK(v.is_number(), where, ": a threshold is not a number");
      const float t = v.get<float>();
      FW_CHECK(std::isfinite(t), where, ": a threshold is not finite");
      cal.threshold.push_back(t);
    }
    cal.tokens = j["tokens"].get<int64_t>();
    FW_CHECK(cal.tokens > 0, where, ": tokens = ", cal.tokens);
  } catch (const nlohmann::json::exception&) {
    fail(where, " is not valid JSON");
  }
  FW_CHECK(mc.mod.enabled, where, ": the model has no routed blocks to calibrate");
  for (int64_t l = 0; l < mc.n_layers; l++)
    FW_CHECK(mc.mod.routed(l) || cal.threshold[size_t(l)] == 0, where, ": layer ", l,
             " is not routed but has threshold ", cal.threshold[size_t(l)]);
  return cal;
}

LoadedModel load_model(const std::string& run_or_file) {
  const std::string path = model_file(run_or_file);
  SafetensorsFile f(path);
  FW_CHECK(f.meta("flopwise.format") == kFormat, path, ": checkpoint format '",
           f.meta("flopwise.format"), "', this flopwise reads '", kFormat, "'");
  LoadedModel out;
  nlohmann::json cj;
  try {
    cj = nlohmann::json::parse(f.meta("flopwise.config"));
  } catch (const nlohmann::json::exception&) {
    fail(path, ": metadata 'flopwise.config' is not valid JSON");
  }
  apply_json(out.config, cj, path + " (flopwise.config)");
  try {
    out.config.validate();
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  if (f.metadata().count("flopwise.special_tokens"))
    FW_CHECK(out.config.model.encoder() && f.meta("flopwise.special_tokens") == special_tokens_json(out.config.model),
             path, ": metadata 'flopwise.special_tokens' disagrees with its config's model (",
             f.meta("flopwise.special_tokens"), ")");
  out.tokenizer = f.meta("flopwise.tokenizer");
  out.step = parse_int(f, "flopwise.step");
  const size_t expect = Model::count_params(out.config.model) * sizeof(float);
  FW_CHECK(f.data_bytes() == expect, path, ": holds ", f.data_bytes(), " bytes of tensors, its config's model needs ",
           expect, " (config and weights disagree)");
  out.model = std::make_unique<Model>(out.config.model);
  Model& m = *out.model;
  for (const auto& t : m.tensors) f.read_f32(t.name, t.shape, m.params.data() + t.offset);
  FW_CHECK(f.names().size() == m.tensors.size(), path, ": holds ", f.names().size(),
           " tensors, the config's model has ", m.tensors.size());
  if (f.metadata().count("flopwise.calibration"))
    m.calibration = parse_calibration(path, f.meta("flopwise.calibration"), out.config.model);
  return out;
}

void load_training_state(const std::string& run_dir, const Model& model, const Config& cfg,
                         int64_t model_step, AdamW& opt, TrainingState& st) {
  const std::string path = run_path(run_dir, run_file::state);
  FW_CHECK(fs::exists(path), path, ": optimizer state not found (cannot resume)");
  SafetensorsFile f(path);
  st.step = parse_int(f, "flopwise.step");
  FW_CHECK(st.step == model_step, path, ": step ", st.step, " but model.safetensors is at step ",
           model_step, " (torn checkpoint pair; cannot resume exactly)");
  FW_CHECK(f.meta("flopwise.config") == to_json(cfg).dump(), path,
           ": config differs from ", run_file::model);
  st.data_pos = parse_int(f, "flopwise.data_pos");
  st.data_dir = f.meta("flopwise.data_dir");
  if (f.metadata().count("flopwise.train_seconds")) {  // absent in checkpoints before it existed
    try {
      st.train_seconds = std::stod(f.meta("flopwise.train_seconds"));
    } catch (const std::logic_error&) {
      fail(path, ": metadata 'flopwise.train_seconds' is not a number");
    }
  }
  for (int i = 0; i < 4; i++) {
    const std::string key = "flopwise.rng" + std::to_string(i);
    try {
      st.rng[size_t(i)] = std::stoull(f.meta(key));
    } catch (const std::logic_error&) {
      fail(path, ": metadata '", key, "' is not an unsigned integer");
    }
  }
  opt.init(model.num_params());
  opt.step = parse_int(f, "flopwise.adamw_step");
  for (const auto& t : model.tensors) {
    f.read_f32("adamw.m." + t.name, t.shape, opt.m.data() + t.offset);
    f.read_f32("adamw.v." + t.name, t.shape, opt.v.data() + t.offset);
  }
}

}  // namespace fw
