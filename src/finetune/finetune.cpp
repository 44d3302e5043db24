#include "finetune/finetune.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <numeric>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "core/timer.h"
#include "finetune/metrics.h"
#include "formats/atomic_file.h"
#include "formats/run_folder.h"
#include "kernels/adamw.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace fw {

namespace fs = std::filesystem;

namespace {

// The longest example: every batch is padded to it.
int64_t longest(const std::vector<Example>& a, const std::vector<Example>& b = {}) {
  size_t n = 1;
  for (const auto* v : {&a, &b})
    for (const Example& e : *v) n = std::max(n, e.tokens.size());
  return int64_t(n);
}

// Rows order[first ...] of examples into a (B,T) batch: each row its tokens, then
// [PAD]; rows past the end of `order` are a lone [CLS] with nothing scored.
void fill_batch(const std::vector<Example>& examples, const std::vector<size_t>& order, size_t first,
                const ModelConfig& c, Activations& a, std::vector<int32_t>& tokens, std::vector<int32_t>& targets) {
  const int64_t B = a.dims.B, T = a.dims.T;
  const SpecialTokens sp = c.special_tokens();
  std::fill(tokens.begin(), tokens.end(), sp.pad);
  std::fill(targets.begin(), targets.end(), -1);
  for (int64_t b = 0; b < B; b++) {
    if (first + size_t(b) >= order.size()) {
      tokens[size_t(b * T)] = sp.cls;
      a.lengths[size_t(b)] = 1;
      continue;
    }
    const Example& e = examples[order[first + size_t(b)]];
    std::copy(e.tokens.begin(), e.tokens.end(), tokens.begin() + b * T);
    std::copy(e.targets.begin(), e.targets.end(), targets.begin() + b * T);
    a.lengths[size_t(b)] = int32_t(e.tokens.size());
  }
}

std::vector<size_t> in_order(size_t n) {
  std::vector<size_t> v(n);
  std::iota(v.begin(), v.end(), size_t(0));
  return v;
}

nlohmann::json scores_json(const TaskScores& s) {
  return {{"loss", s.loss}, {"accuracy", s.accuracy}, {"macro_f1", s.macro_f1}, {"mcc", s.mcc}, {"scored", s.scored}};
}

}  // namespace

std::string task_metric(const std::string& spec) { return spec.rfind("glue:cola:", 0) == 0 ? "mcc" : "accuracy"; }

double metric_value(const TaskScores& s, const std::string& metric) { return metric == "mcc" ? s.mcc : s.accuracy; }

TaskScores score_task(Model& model, const std::vector<Example>& examples, int64_t batch,
                      std::vector<int32_t>* predictions, double* forward_seconds) {
  const ModelConfig& c = model.cfg;
  FW_CHECK(c.classifier(), "internal: scoring a task needs a classifier head");
  const int64_t B = std::max<int64_t>(1, std::min<int64_t>(batch, int64_t(examples.size())));
  // Shortest examples first, each batch padded only to its own longest: one set of
  // activations for the longest example serves every batch (Activations::use_length).
  std::vector<size_t> order = in_order(examples.size());
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return examples[x].tokens.size() < examples[y].tokens.size(); });
  const auto a = std::make_unique<Activations>(model, B, longest(examples), false);
  std::vector<int32_t> tokens, targets;
  std::vector<std::vector<int32_t>> predicted(examples.size());  // per example, its scored tokens' labels
  Confusion confusion(c.labels);
  TaskScores s;
  double loss_sum = 0;
  for (size_t first = 0; first < order.size(); first += size_t(B)) {
    const size_t last = std::min(order.size(), first + size_t(B));
    const int64_t T = int64_t(examples[order[last - 1]].tokens.size());
    a->use_length(T);
    tokens.resize(size_t(B * T));
    targets.resize(tokens.size());
    fill_batch(examples, order, first, c, *a, tokens, targets);
    if (std::none_of(targets.begin(), targets.end(), [](int32_t t) { return t >= 0; })) continue;
    const double t0 = now_seconds();
    const ForwardLoss f = model_forward(model, *a, tokens.data(), targets.data(), ForwardMode{});
    if (forward_seconds) *forward_seconds += now_seconds() - t0;
    loss_sum += double(f.loss) * double(f.scored);
    s.scored += f.scored;
    for (size_t r = 0; r < a->chosen.size(); r++) {  // a->logits: the scored rows' probabilities, in order
      const float* p = a->logits + int64_t(r) * c.labels;
      const int32_t label = int32_t(std::max_element(p, p + c.labels) - p);
      confusion.add(a->chosen_targets[r], label);
      predicted[order[first + size_t(a->chosen[r] / T)]].push_back(label);
    }
  }
  FW_CHECK(s.scored > 0, "task: nothing to score (every example empty)");
  if (predictions) {
    predictions->clear();
    for (const auto& p : predicted) predictions->insert(predictions->end(), p.begin(), p.end());
  }
  s.loss = loss_sum / double(s.scored);
  s.accuracy = confusion.accuracy();
  s.macro_f1 = confusion.macro_f1();
  s.mcc = confusion.matthews();
  return s;
}

FinetuneResult finetune(const FinetuneOptions& opt) {
  auto log = [&](const std::string& line) {
    if (opt.log) opt.log(line);
  };
  FW_CHECK(opt.epochs >= 1 && opt.batch >= 1 && opt.patience >= 1, "finetune: --epochs, --batch and --patience must be >= 1");
  FW_CHECK(opt.lr > 0 && std::isfinite(opt.lr), "finetune: --lr ", opt.lr, " must be positive");
  LoadedModel pre = load_model(opt.pretrained);
  const ModelConfig& pc = pre.config.model;
  FW_CHECK(pc.encoder(), opt.pretrained, ": a decoder (model.kind = 'decoder'); fine-tuning takes a pretrained encoder");
  FW_CHECK(!pc.classifier(), opt.pretrained, ": already fine-tuned (model.head = '", name_of(pc.head),
           "'); fine-tune its pretrained encoder instead");
  FW_CHECK(pre.tokenizer != "unknown", opt.pretrained, ": its tokenizer is unknown, so task text cannot be tokenized");
  const auto tok = make_tokenizer(pre.tokenizer);
  TaskOptions to = opt.task_options;
  to.max_len = std::min(to.max_len, pc.max_seq_len);
  FinetuneResult r;
  r.task = load_task(opt.task, *tok, pc, to);
  r.metric = task_metric(opt.task);
  const Task& task = r.task;

  Config cfg = pre.config;
  cfg.model.head = task.head;
  cfg.model.labels = int64_t(task.labels.size());
  const int64_t B = std::min<int64_t>(opt.batch, int64_t(task.train.size()));
  const int64_t steps_per_epoch = (int64_t(task.train.size()) + B - 1) / B, T = longest(task.train, task.val);
  TrainConfig& tc = cfg.train;
  tc.lr = opt.lr;
  tc.min_lr = 0;
  tc.weight_decay = opt.weight_decay;
  tc.batch_size = B;
  tc.grad_accum = 1;
  tc.seq_len = T;
  tc.steps = opt.epochs * steps_per_epoch;
  tc.warmup = std::max<int64_t>(1, tc.steps / 10);
  tc.seed = opt.seed;
  cfg.validate();

  Model model(cfg.model);
  model.init_weights(uint64_t(opt.seed));  // the classifier's start; the encoder's weights come next
  for (const ParamTensor& t : pre.model->tensors) {
    const auto it = std::find_if(model.tensors.begin(), model.tensors.end(), [&](const ParamTensor& u) { return u.name == t.name; });
    FW_CHECK(it != model.tensors.end() && it->numel() == t.numel(), "internal: tensor ", t.name, " differs after adding the classifier");
    std::copy_n(pre.model->params.data() + t.offset, t.numel(), model.params.data() + it->offset);
  }
  pre.model.reset();
  model.set_matmul_bf16(tc.bf16());
  model.enable_grads();
  AdamW adam;
  const auto classifier = std::find_if(model.tensors.begin(), model.tensors.end(),
                                       [](const ParamTensor& t) { return t.name == "classifier.weight"; });
  FW_CHECK(classifier != model.tensors.end(), "internal: no classifier tensor");
  if (opt.head_only) adam.init_shard(int64_t(classifier->offset), int64_t(model.num_params()));  // the last tensors
  else adam.init(model.num_params());
  log(str("task ", task.spec, ": ", task.train.size(), " train and ", task.val.size(), " validation examples, ",
          task.labels.size(), " labels, ", name_of(task.head), " head", task.truncated ? str(", ", task.truncated, " cut to ", to.max_len, " tokens") : "",
          "; training ", opt.head_only ? "the classifier alone" : "the whole model", " for up to ", opt.epochs,
          " epochs of ", steps_per_epoch, " steps (batch ", B, ", sequences of ", T, ")"));

  fs::create_directories(opt.out);
  Activations a(model, B, T, true);
  std::vector<int32_t> tokens(size_t(B * T)), targets(tokens.size());
  std::vector<size_t> order = in_order(task.train.size());
  nlohmann::json record = {{"task", task.spec},     {"head", name_of(task.head)},  {"labels", task.labels},
                           {"pretrained", opt.pretrained}, {"head_only", opt.head_only}, {"metric", r.metric},
                           {"train_examples", task.train.size()}, {"val_examples", task.val.size()},
                           {"truncated", task.truncated}, {"max_len", to.max_len}, {"epochs", nlohmann::json::array()},
                           {"val_examples_drawn", to.val_examples}};
  int64_t step = 0, since_best = 0;
  double best = -INFINITY, train_seconds = 0, train_tokens = 0;
  for (int64_t epoch = 1; epoch <= opt.epochs && since_best < opt.patience; epoch++) {
    Rng rng(hash64(uint64_t(opt.seed) ^ hash64(uint64_t(epoch))));
    for (size_t i = order.size(); i > 1; i--) std::swap(order[i - 1], order[size_t(rng.next_u64() % i)]);
    double loss_sum = 0;
    const double t0 = now_seconds();
    for (size_t first = 0; first < order.size(); first += size_t(B), step++) {
      fill_batch(task.train, order, first, cfg.model, a, tokens, targets);
      for (int64_t b = 0; b < B; b++) train_tokens += a.lengths[size_t(b)];
      if (std::none_of(targets.begin(), targets.end(), [](int32_t t) { return t >= 0; })) continue;
      const ForwardLoss f = model_forward(model, a, tokens.data(), targets.data(), ForwardMode{true, rng.next_u64()});
      FW_CHECK(std::isfinite(f.loss), "finetune: non-finite loss at step ", step + 1, "; try a lower --lr");
      model.grads.zero();
      model_backward(model, a, tokens.data(), targets.data(), 1.0f);
      const double lr = learning_rate(tc, step);
      if (opt.head_only) {
        const double norm = std::sqrt(sum_squares(model.grads.data() + adam.lo, adam.hi - adam.lo));
        adam.apply(model, tc, lr, norm);
      } else {
        adam.update(model, tc, lr);
      }
      model.sync_bf16();
      loss_sum += f.loss;
    }
    train_seconds += now_seconds() - t0;
    EpochScores e{epoch, loss_sum / double(steps_per_epoch), score_task(model, task.val, B)};
    r.epochs.push_back(e);
    nlohmann::json ej = scores_json(e.val);
    ej["epoch"] = epoch;
    ej["train_loss"] = e.train_loss;
    record["epochs"].push_back(ej);
    const double score = metric_value(e.val, r.metric);
    const bool better = score > best;
    log(str("epoch ", epoch, " | train loss ", e.train_loss, " | val loss ", e.val.loss, " | accuracy ",
            e.val.accuracy, " | macro-F1 ", e.val.macro_f1, " | MCC ", e.val.mcc, better ? " (best)" : ""));
    if (better) {
      best = score;
      r.best_epoch = epoch;
      since_best = 0;
      save_model(opt.out, model, cfg, tok->spec(), step);
    } else {
      since_best++;
    }
    record["best_epoch"] = r.best_epoch;
    write_file_atomic(run_path(opt.out, run_file::config), to_json(cfg).dump(2) + "\n");
    write_file_atomic(run_path(opt.out, run_file::task), record.dump(2) + "\n");
  }
  if (since_best >= opt.patience && int64_t(r.epochs.size()) < opt.epochs)
    log(str("stopped early: no better ", r.metric, " for ", opt.patience, " epochs"));
  r.tokens_per_s = train_seconds > 0 ? train_tokens / train_seconds : 0;
  return r;
}

}  // namespace fw
