// Fine-tuning a pretrained encoder on a labelled task (finetune/tasks.h): the encoder
// gains a classifier (model.head = sequence: at [CLS]; tagging: at each word's first
// token) and trains the whole model, or the classifier alone, with AdamW, a linear
// warmup over the first tenth of the steps and a linear decay to zero, evaluating on
// the validation split after every epoch and keeping the best epoch's weights; it stops
// early after `patience` epochs without a better score. The run folder holds
// config.json, model.safetensors (the best epoch) and task.json (the task, its labels
// and every epoch's scores).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "finetune/tasks.h"
#include "nn/model.h"

namespace fw {

struct TaskScores {
  double loss = 0;  // mean cross-entropy over the scored tokens
  double accuracy = 0, macro_f1 = 0, mcc = 0;
  int64_t scored = 0;  // examples (sequence) or words (tagging)
};

// Scores a classifier on examples, `batch` at a time; predictions (if asked): the
// predicted label of every scored token, in order; forward_seconds (if asked): the
// time in the model's forward passes alone (not making the activations: in a VM their
// first touch can cost more than the forwards).
TaskScores score_task(Model& model, const std::vector<Example>& examples, int64_t batch,
                      std::vector<int32_t>* predictions = nullptr, double* forward_seconds = nullptr);

struct FinetuneOptions {
  std::string pretrained;  // run folder or model file of a pretrained encoder
  std::string task;        // task spec (finetune/tasks.h)
  std::string out;         // the fine-tuned run's folder
  bool head_only = false;  // train the classifier alone, the encoder frozen
  int64_t epochs = 10, batch = 32, patience = 3, seed = 1;
  double lr = 1e-4, weight_decay = 0.01;
  TaskOptions task_options;
  std::function<void(const std::string&)> log;
};

struct EpochScores {
  int64_t epoch = 0;
  double train_loss = 0;
  TaskScores val;
};

struct FinetuneResult {
  Task task;  // its examples too
  std::vector<EpochScores> epochs;
  int64_t best_epoch = 0;  // 1-based
  std::string metric;      // what "best" maximises: accuracy, or mcc for CoLA
  double tokens_per_s = 0;
};

FinetuneResult finetune(const FinetuneOptions& opt);

// The score early stopping and the summary report for a task: GLUE's CoLA is judged
// by Matthews correlation, every other task by accuracy.
std::string task_metric(const std::string& spec);
double metric_value(const TaskScores& s, const std::string& metric);

}  // namespace fw
