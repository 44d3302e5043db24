// _flopwise: the engine's models, tokenizers, FLOP counts, fits and plans for Python
// (the package python/flopwise wraps it). Parameters and gradients are NumPy arrays
// that view the engine's own buffers: nothing is copied, and a write through a view is
// what the next forward uses. Every fw::Error becomes flopwise.Error with the message
// the command line would print. Forward and backward release the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "infer/generator.h"
#include "infer/sampling.h"
#include "kernels/vec_math.h"
#include "nn/flops.h"
#include "nn/model.h"
#include "scaling/law_report.h"
#include "scaling/plan.h"
#include "tokenizers/tokenizer.h"
#include "core/timer.h"
#include "kernels/matmul.h"
#include "scaling/runs.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace py = pybind11;

namespace {

using fw::Error;

py::object from_json(const nlohmann::json& j) { return py::module_::import("json").attr("loads")(j.dump()); }

// A (B, T) batch of token ids from any integer array-like (one sequence: B = 1),
// each checked against the vocabulary.
struct TokenBatch {
  std::vector<int32_t> ids;  // (B, T)
  int64_t B = 0, T = 0;
};

TokenBatch token_batch(py::handle obj, const char* what, int64_t vocab, bool allow_negative = false) {
  auto a = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(obj);
  FW_CHECK(a && (a.ndim() == 1 || a.ndim() == 2), what, ": expected a (T,) or (B, T) array of token ids");
  TokenBatch t;
  t.B = a.ndim() == 2 ? a.shape(0) : 1;
  t.T = a.shape(a.ndim() - 1);
  FW_CHECK(t.B >= 1 && t.T >= 1, what, ": empty batch (", t.B, " x ", t.T, ")");
  const int64_t* p = a.data();
  t.ids.resize(size_t(t.B * t.T));
  for (int64_t i = 0; i < t.B * t.T; i++) {
    FW_CHECK((allow_negative && p[i] < 0) || (p[i] >= 0 && p[i] < vocab), what, ": id ", p[i], " at [",
             i / t.T, ", ", i % t.T, "] is outside the vocabulary [0, ", vocab, ")");
    t.ids[size_t(i)] = int32_t(p[i] < 0 ? -1 : p[i]);
  }
  return t;
}

// An array of `shape` over engine memory owned by `owner` (kept alive by the array).
py::array_t<float> view(float* data, const std::vector<int64_t>& shape, py::handle owner) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end()), strides(shape.size());
  py::ssize_t s = sizeof(float);
  for (size_t i = shape.size(); i-- > 0;) strides[i] = s, s *= dims[i];
  return py::array_t<float>(dims, strides, data, owner);
}

py::array_t<float> copy_of(const float* data, const std::vector<py::ssize_t>& shape) {
  py::array_t<float> out(shape);
  std::copy(data, data + out.size(), out.mutable_data());
  return out;
}

// A loaded run: the model, its tokenizer, and activations for the last batch shape.
class PyModel {
 public:
  explicit PyModel(const std::string& run) : lm_(fw::load_model(run)) {
    lm_.model->set_matmul_bf16(lm_.config.train.bf16());
  }
  fw::Model& model() { return *lm_.model; }
  const fw::Config& config() const { return lm_.config; }
  const std::string& tokenizer_spec() const { return lm_.tokenizer; }
  int64_t step() const { return lm_.step; }

  const fw::Tokenizer& tokenizer() {
    if (!tok_) tok_ = fw::make_tokenizer(lm_.tokenizer);
    return *tok_;
  }

  py::dict tensors(py::handle self, bool grads) {
    fw::Model& m = model();
    if (grads) m.enable_grads();
    float* base = grads ? m.grads.data() : m.params.data();
    py::dict d;
    for (const fw::ParamTensor& t : m.tensors) d[py::str(t.name)] = view(base + t.offset, t.shape, self);
    return d;
  }

  // (B, T) inputs → logits (B, T, V), or a classifier's (B, T, labels).
  py::array_t<float> logits(py::handle tokens) {
    const TokenBatch t = inference_forward(tokens, "logits");
    const int64_t N = cfg().classifier() ? cfg().labels : cfg().vocab_size;
    return copy_of(acts_->logits, {t.B, t.T, N});
  }

  // Decoders: (B, T+1) tokens, each position predicting the next. Encoders: (B, T)
  // inputs and (B, T) targets, −1 where a position is not scored.
  // train: the training forward (fff_leaf's soft mixture, randomness from seed), with
  // activations kept for backward().
  py::dict loss(py::handle tokens, py::handle targets, bool train, uint64_t seed) {
    prepare(tokens, targets);
    fw::Activations& a = activations(in_.B, in_.T, train);
    fw::ForwardLoss f;
    {
      py::gil_scoped_release nogil;
      model().sync_bf16();
      f = fw::model_forward(model(), a, in_.ids.data(), tgt_.ids.data(), fw::ForwardMode{train, seed});
    }
    trained_forward_ = train;
    py::dict out;
    out["loss"] = f.loss;
    out["aux_loss"] = f.aux_loss;
    out["objective"] = f.objective();
    out["scored"] = f.scored;
    return out;
  }

  // The gradient of the objective of the same batch (after loss(train=True)) into the
  // gradient buffers, which it zeroes first.
  void backward() {
    FW_CHECK(trained_forward_, "backward: call loss(..., train=True) on the batch first");
    fw::Model& m = model();
    m.enable_grads();
    py::gil_scoped_release nogil;
    m.grads.zero();
    fw::model_backward(m, *acts_, in_.ids.data(), tgt_.ids.data(), 1.0f);
    trained_forward_ = false;  // the backward consumed the activations (dlogits in place)
  }

  // After an inference forward of tokens: per routed block, the router logits, the
  // top-k selection, the predictor's logits, and the causal decisions sampling would
  // take on these block inputs (its decider's logit above the block's threshold).
  py::list routing(py::handle tokens) {
    FW_CHECK(cfg().mod.enabled, "routing: the model has no Mixture-of-Depths blocks");
    const TokenBatch t = inference_forward(tokens, "routing");
    const fw::Activations& a = *acts_;
    const std::vector<float> thresholds = model().causal_thresholds(true);
    py::list out;
    for (int64_t l = 0; l < cfg().n_layers; l++) {
      if (!cfg().mod.routed(l)) continue;
      const fw::RoutedActs& r = a.routed[size_t(l)];
      const bool pred = cfg().mod.predictor();
      py::array_t<bool> selected({t.B, t.T}), causal({t.B, t.T});
      for (int64_t i = 0; i < t.B * t.T; i++) {
        selected.mutable_data()[i] = r.selected[size_t(i)] != 0;
        const float decider = cfg().mod.decides_by_predictor() ? r.pred_p[i] : r.r[i];
        causal.mutable_data()[i] = decider > thresholds[size_t(l)];
      }
      py::dict d;
      d["layer"] = l;
      d["router"] = copy_of(r.r, {t.B, t.T});
      d["selected"] = selected;
      d["predictor"] = pred ? py::object(copy_of(r.pred_p, {t.B, t.T})) : py::none();
      d["threshold"] = thresholds[size_t(l)];
      d["causal"] = causal;
      out.append(d);
    }
    return out;
  }

  // For bench/python_overhead.py: seconds of each of `reps` inference forwards of
  // tokens (B, T) through the C++ API alone (model_forward on the activations logits()
  // uses), beside which a logits() call shows what the Python layer adds.
  std::vector<double> time_forward(py::handle tokens, int reps) {
    const TokenBatch t = token_batch(tokens, "time_forward", cfg().vocab_size);
    fw::Activations& a = activations(t.B, t.T, false);
    std::vector<double> s;
    py::gil_scoped_release nogil;
    for (int i = 0; i < reps; i++) {
      const double t0 = fw::now_seconds();
      model().sync_bf16();
      fw::model_forward(model(), a, t.ids.data(), nullptr, fw::ForwardMode{});
      s.push_back(fw::now_seconds() - t0);
    }
    return s;
  }

  // After an inference forward: per block, the neuron each token visits at each level
  // of each tree (B, T, K, D+1), index within its tree; −1 for tokens a routed block skipped.
  py::list fff_paths(py::handle tokens) {
    const fw::MlpShape s = cfg().mlp_shape();
    FW_CHECK(s.kind == fw::MlpKind::fff, "fff_paths: the model's MLP is '", fw::name_of(s.kind),
             "', not 'fff'");
    const TokenBatch t = inference_forward(tokens, "fff_paths");
    const fw::Activations& a = *acts_;
    const int64_t P = s.K * (s.D + 1);
    py::list out;
    for (int64_t l = 0; l < cfg().n_layers; l++) {
      py::array_t<int32_t> paths({t.B, t.T, s.K, s.D + 1});
      int32_t* o = paths.mutable_data();
      std::fill(o, o + paths.size(), -1);
      if (cfg().mod.routed(l)) {  // the inner block ran on the selected tokens, (B, k) in position order
        const fw::RoutedActs& r = a.routed[size_t(l)];
        const int64_t k = cfg().mod.k(t.T);
        for (int64_t b = 0; b < t.B; b++)
          for (int64_t j = 0; j < r.inner_lengths[size_t(b)]; j++)
            for (int64_t v = 0; v < P; v++)
              o[(b * t.T + r.idx[size_t(b * k + j)]) * P + v] = int32_t(r.inner.mlp.path[(b * k + j) * P + v]);
      } else {
        const float* p = a.blocks[size_t(l)].mlp.path;
        for (int64_t i = 0; i < t.B * t.T * P; i++) o[i] = int32_t(p[i]);
      }
      out.append(paths);
    }
    return out;
  }

 private:
  const fw::ModelConfig& cfg() const { return lm_.config.model; }

  // The inference forward of a (B, T) batch into acts_, without the GIL; `what` names
  // the call in errors.
  TokenBatch inference_forward(py::handle tokens, const char* what) {
    TokenBatch t = token_batch(tokens, what, cfg().vocab_size);
    fw::Activations& a = activations(t.B, t.T, false);
    py::gil_scoped_release nogil;
    model().sync_bf16();  // writes through the parameter views reach the bf16 copy
    fw::model_forward(model(), a, t.ids.data(), nullptr, fw::ForwardMode{});
    return t;
  }

  // in_, tgt_ from a decoder's (B, T+1) tokens or an encoder's inputs and targets.
  void prepare(py::handle tokens, py::handle targets) {
    const int64_t V = cfg().vocab_size;
    if (cfg().encoder()) {
      FW_CHECK(!targets.is_none(), "loss: an encoder scores given targets: pass targets (B, T), -1 where unscored");
      in_ = token_batch(tokens, "loss", V);
      tgt_ = token_batch(targets, "loss targets", cfg().classifier() ? cfg().labels : V, true);
      FW_CHECK(tgt_.B == in_.B && tgt_.T == in_.T, "loss: targets are ", tgt_.B, " x ", tgt_.T, ", tokens ", in_.B,
               " x ", in_.T);
      return;
    }
    FW_CHECK(targets.is_none(), "loss: a decoder predicts each next token: pass (B, T+1) tokens and no targets");
    const TokenBatch all = token_batch(tokens, "loss", V);
    FW_CHECK(all.T >= 2, "loss: a decoder needs at least 2 tokens per row (inputs and their next tokens)");
    in_ = tgt_ = TokenBatch{{}, all.B, all.T - 1};
    for (int64_t b = 0; b < all.B; b++)
      for (int64_t t = 0; t + 1 < all.T; t++) {
        in_.ids.push_back(all.ids[size_t(b * all.T + t)]);
        tgt_.ids.push_back(all.ids[size_t(b * all.T + t + 1)]);
      }
  }

  fw::Activations& activations(int64_t B, int64_t T, bool backward) {
    FW_CHECK(T <= cfg().max_seq_len, "sequence of ", T, " tokens is longer than model.max_seq_len = ",
             cfg().max_seq_len);
    if (!acts_ || B != aB_ || T != aT_ || backward != acts_->with_backward) {
      acts_.reset();
      acts_ = std::make_unique<fw::Activations>(model(), B, T, backward);
      aB_ = B, aT_ = T;
    }
    if (cfg().encoder()) acts_->lengths.assign(size_t(B), int32_t(T));
    return *acts_;
  }

  fw::LoadedModel lm_;
  std::unique_ptr<fw::Tokenizer> tok_;
  std::unique_ptr<fw::Activations> acts_;
  int64_t aB_ = 0, aT_ = 0;
  TokenBatch in_, tgt_;
  bool trained_forward_ = false;
};

// Trains a run; on_step(dict) after every step may return False to stop there (with a
// checkpoint). Ctrl-C, seen at the next step boundary, stops the same way and then
// raises KeyboardInterrupt; so does an exception in on_step (re-raised).
py::dict train(const std::string& config_json, const std::string& data, const std::string& out, py::object on_step,
               bool resume, bool verbose) {
  fw::Config c;
  if (!resume) fw::apply_json(c, nlohmann::json::parse(config_json), "config");
  fw::TrainOptions o;
  o.data_dir = data;
  o.run_dir = out;
  o.resume = resume;
  if (verbose)
    o.log = [](const std::string& line) {
      py::gil_scoped_acquire gil;
      py::module_::import("sys").attr("stderr").attr("write")(line + "\n");
    };
  std::unique_ptr<py::error_already_set> failure;  // an exception to re-raise after the checkpoint
  o.on_step = [&](const fw::StepReport& r) {
    py::gil_scoped_acquire gil;
    try {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();  // Ctrl-C: KeyboardInterrupt pending
      if (on_step.is_none()) return true;
      py::dict d;
      d["step"] = r.step;
      d["steps"] = r.steps;
      d["loss"] = r.loss;
      d["lr"] = r.lr;
      d["val_loss"] = std::isnan(r.val_loss) ? py::object(py::none()) : py::object(py::float_(r.val_loss));
      d["train_seconds"] = r.train_seconds;
      const py::object keep = on_step(d);
      return keep.is_none() || keep.cast<bool>();
    } catch (py::error_already_set& e) {
      failure = std::make_unique<py::error_already_set>(std::move(e));
      return false;
    }
  };
  fw::TrainSummary s;
  {
    py::gil_scoped_release nogil;
    s = fw::run_training(c, o);
  }
  if (failure) throw *failure;
  py::dict d;
  d["step"] = s.step;
  d["finished"] = s.finished;
  d["train_loss"] = s.train_loss;
  d["val_loss"] = std::isnan(s.val_loss) ? py::object(py::none()) : py::object(py::float_(s.val_loss));
  d["tokens_per_s"] = s.tokens_per_s;
  d["mfu"] = s.mfu;
  d["train_flops_per_token"] = s.flops_per_token;
  d["precision"] = s.bf16 ? "bf16" : "fp32";
  return d;
}

// A config from its JSON (the config file's form), on the defaults, validated.
fw::Config config_of(const std::string& json) {
  fw::Config c;
  fw::apply_json(c, nlohmann::json::parse(json), "config");
  c.model.validate();
  return c;
}

// Sampling after several prompts one position at a time (infer/generator.h:
// BatchSampler) on the caller's thread: Python's generate yields each position's tokens
// before it asks for the next, so no second thread runs the model (with libgomp, OpenMP
// work started from a thread other than the one that used it first runs several times
// slower).
class PySampler {
 public:
  PySampler(PyModel& m, const std::vector<std::vector<int32_t>>& prompts, double temperature, int64_t top_k,
            double top_p, uint64_t seed, const std::string& kv_cache)
      : gen_(checked(m, prompts), m.config().model.max_seq_len, 64, int64_t(prompts.size()), 0,
             fw::kv_cache_named(kv_cache, "generate: kv_cache")),
        sampler_(gen_, prompts, {temperature, top_k, top_p, m.tokenizer().vocab_size()}, seed) {}
  std::vector<int32_t> next() {
    py::gil_scoped_release nogil;
    return sampler_.next();
  }

 private:
  static const fw::Model& checked(PyModel& m, const std::vector<std::vector<int32_t>>& prompts) {
    const fw::ModelConfig& c = m.config().model;
    FW_CHECK(!c.encoder(), "generate: an encoder does not generate text");
    FW_CHECK(!prompts.empty(), "generate: no prompts");
    for (const auto& p : prompts) {
      FW_CHECK(!p.empty(), "generate: an empty prompt (give at least one token)");
      for (int32_t id : p)
        FW_CHECK(id >= 0 && id < c.vocab_size, "generate: prompt id ", id, " is outside the vocabulary [0, ",
                 c.vocab_size, ")");
    }
    m.model().sync_bf16();  // the generator packs the weights as they are now
    return m.model();
  }
  fw::Generator gen_;
  fw::BatchSampler sampler_;  // (the model's extra ids, an encoder's specials, stand for no text: vocab_limit)
};

}  // namespace

PYBIND11_MODULE(_flopwise, m) {
  m.doc() = "flopwise's engine (see the flopwise package for the documented API)";
  static py::exception<Error> error(m, "Error");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      error(e.what());
    }
  });

  py::class_<fw::Tokenizer>(m, "Tokenizer")
      .def_property_readonly("spec", &fw::Tokenizer::spec)
      .def_property_readonly("vocab_size", &fw::Tokenizer::vocab_size)
      .def("encode", [](const fw::Tokenizer& t, const std::string& s) {
        const std::vector<int32_t> ids = t.encode(s);
        py::array_t<int32_t> out(py::ssize_t(ids.size()));
        std::copy(ids.begin(), ids.end(), out.mutable_data());
        return out;
      })
      .def("decode_bytes", [](const fw::Tokenizer& t, py::handle ids) {
        const TokenBatch b = token_batch(ids, "decode", t.vocab_size());
        FW_CHECK(b.B == 1, "decode: one sequence of ids at a time");
        return py::bytes(t.decode(b.ids));
      });
  m.def("make_tokenizer", [](const std::string& spec) { return fw::make_tokenizer(spec); });

  py::class_<PyModel>(m, "Model")
      .def(py::init<const std::string&>())
      .def_property_readonly("config_json", [](const PyModel& p) { return fw::to_json(p.config()).dump(); })
      .def_property_readonly("tokenizer_spec", &PyModel::tokenizer_spec)
      .def_property_readonly("step", &PyModel::step)
      .def_property_readonly("tokenizer", &PyModel::tokenizer, py::return_value_policy::reference_internal)
      .def_property_readonly("num_params", [](PyModel& p) { return p.model().num_params(); })
      .def_property_readonly("causal_thresholds", [](PyModel& p) { return p.model().causal_thresholds(true); })
      .def("params", [](py::object self) { return self.cast<PyModel&>().tensors(self, false); })
      .def("grads", [](py::object self) { return self.cast<PyModel&>().tensors(self, true); })
      .def("logits", &PyModel::logits)
      .def("loss", &PyModel::loss, py::arg("tokens"), py::arg("targets") = py::none(), py::arg("train") = false,
           py::arg("seed") = 0)
      .def("backward", &PyModel::backward)
      .def("routing", &PyModel::routing)
      .def("fff_paths", &PyModel::fff_paths)
      .def("_time_forward", &PyModel::time_forward)
      ;
  py::class_<PySampler>(m, "Sampler")
      .def(py::init<PyModel&, const std::vector<std::vector<int32_t>>&, double, int64_t, double, uint64_t,
                    const std::string&>(),
           py::arg("model"), py::arg("prompts"), py::arg("temperature") = 1.0, py::arg("top_k") = 0,
           py::arg("top_p") = 1.0, py::arg("seed") = 0, py::arg("kv_cache") = "fp32", py::keep_alive<1, 2>())
      .def("next", &PySampler::next);

  m.def("train", &train, py::arg("config_json"), py::arg("data"), py::arg("out"), py::arg("on_step") = py::none(),
        py::arg("resume") = false, py::arg("verbose") = false);
  // Approach 3, the grid fit and (isoflop) Approach 2 of runs: a CSV (as `flopwise fit
  // --runs`, variant "" = all rows) or records (params, tokens, flops, loss)
  m.def("fit_csv", [](const std::string& path, const std::string& params, const std::string& variant, int bootstrap,
                      bool isoflop, uint64_t seed) {
    fw::RunsSelection sel;
    sel.params_column = params;
    sel.variant = variant;
    fw::LawReportOptions lo;
    lo.bootstrap = bootstrap, lo.isoflop = isoflop, lo.seed = seed, lo.params_column = params;
    const std::vector<fw::RunRecord> runs = fw::read_runs_csv(path, sel);
    py::gil_scoped_release nogil;
    return fw::law_report(runs, lo).dump();
  });
  m.def("fit_records", [](const std::vector<std::array<double, 4>>& records, int bootstrap, bool isoflop,
                          uint64_t seed) {
    std::vector<fw::RunRecord> runs;
    for (const auto& r : records) {
      for (double v : r) FW_CHECK(std::isfinite(v) && v > 0, "fit: every run needs positive params, tokens, flops and loss");
      runs.push_back({r[0], r[1], r[2], r[3]});
    }
    fw::LawReportOptions lo;
    lo.bootstrap = bootstrap, lo.isoflop = isoflop, lo.seed = seed;
    py::gil_scoped_release nogil;
    return fw::law_report(runs, lo).dump();
  });
  m.def("plan", [](double flops, double hours, const std::string& law, const std::string& fit,
                   const std::string& variant, const std::string& config_json, double mfu) {
    FW_CHECK((flops > 0) != (hours > 0), "plan: give flops or hours (one of them, positive)");
    FW_CHECK(mfu > 0 && mfu <= 1, "plan: mfu must be in (0, 1]");
    fw::Config c;
    fw::apply_json(c, nlohmann::json::parse(config_json), "config");
    const double rate = fw::sgemm_peak_flops() * mfu;
    return fw::plan_report(law, fit, variant, flops > 0 ? flops : hours * 3600 * rate, c.model, c.train, rate).dump();
  });

  // for the PyTorch twin: the config with every default filled in, its tensors in
  // checkpoint order, the MLP's resolved tree depth, and writing a run's weights
  m.def("resolved_config", [](const std::string& json) { return fw::to_json(config_of(json)).dump(); });
  m.def("param_shapes", [](const std::string& json) {
    const fw::Model model(config_of(json).model);
    std::vector<std::pair<std::string, std::vector<int64_t>>> out;
    for (const fw::ParamTensor& t : model.tensors) out.push_back({t.name, t.shape});
    return out;
  });
  m.def("mlp_depth", [](const std::string& json) { return config_of(json).model.mlp_shape().D; });
  m.def("save_model", [](const std::string& run, const std::string& json, py::dict params, const std::string& tokenizer,
                         int64_t step) {
    const fw::Config c = config_of(json);
    fw::Model model(c.model);
    for (const fw::ParamTensor& t : model.tensors) {
      FW_CHECK(params.contains(t.name), "save_model: no tensor '", t.name, "'");
      auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(params[py::str(t.name)]);
      FW_CHECK(a && size_t(a.size()) == t.numel(), "save_model: tensor '", t.name, "' has ", a ? a.size() : 0,
               " values, expected ", t.numel());
      std::copy(a.data(), a.data() + a.size(), model.params.data() + t.offset);
    }
    fw::save_model(run, model, c, tokenizer, step);
  });
  m.def("flops", [](const std::string& config_json, int64_t seq_len) {
    const fw::Config c = config_of(config_json);
    const int64_t s = seq_len > 0 ? seq_len : c.train.seq_len;
    FW_CHECK(s >= 1 && s <= c.model.max_seq_len, "flops: seq_len ", s, " must be in [1, model.max_seq_len = ",
             c.model.max_seq_len, "]");
    return from_json(fw::flop_report(c.model, s, c.train.mask_rate));
  }, py::arg("config_json"), py::arg("seq_len") = 0);
}
