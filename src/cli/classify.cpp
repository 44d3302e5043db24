// flopwise classify: a fine-tuned encoder's predictions for the lines of a file, in
// batches: a sequence head labels each line; a tagging head labels each
// whitespace-separated word of each line.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/common.h"
#include "core/error.h"
#include "core/timer.h"
#include "finetune/finetune.h"
#include "formats/run_folder.h"
#include "tokenizers/tokenizer.h"

namespace fw::cli {

namespace {
struct ClassifyFlags {
  std::string ckpt, input;
  int64_t batch = 32;
  CommonFlags common;
};

void run_classify(const ClassifyFlags& f) {
  f.common.apply();
  FW_CHECK(f.batch >= 1, "classify: --batch must be >= 1");
  LoadedModel lm = load_model(f.ckpt);
  const ModelConfig& mc = lm.config.model;
  FW_CHECK(mc.classifier(), model_file(f.ckpt), ": no classifier (model.head = '", name_of(mc.head),
           "'); fine-tune it first with `flopwise finetune`");
  const nlohmann::json record = read_task_record(f.ckpt, true);
  FW_CHECK(record.contains("labels") && record["labels"].is_array() && int64_t(record["labels"].size()) == mc.labels,
           run_path(f.ckpt, run_file::task), ": lacks the model's ", mc.labels, " labels");
  const std::vector<std::string> labels = record["labels"].get<std::vector<std::string>>();
  const int64_t max_len = record.value("max_len", mc.max_seq_len);
  const auto tok = make_tokenizer(lm.tokenizer);
  std::ifstream in(f.input);
  FW_CHECK(in, f.input, ": cannot read");
  std::vector<std::string> lines;
  std::vector<std::vector<std::string>> words;
  std::vector<Example> examples;
  int64_t truncated = 0;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (mc.head == HeadKind::sequence) {
      examples.push_back(sequence_example(line, *tok, mc, max_len));
    } else {
      std::istringstream ss(line);
      std::vector<std::string> w;
      for (std::string word; ss >> word;) w.push_back(word);
      examples.push_back(words_example(w, *tok, mc, max_len));
      words.push_back(std::move(w));
    }
    truncated += examples.back().truncated;
    lines.push_back(line);
  }
  FW_CHECK(!lines.empty(), f.input, ": empty");
  lm.model->set_matmul_bf16(lm.config.train.bf16());
  std::vector<int32_t> predicted;
  const double t0 = now_seconds();
  double forward = 0;
  score_task(*lm.model, examples, f.batch, &predicted, &forward);
  const double seconds = now_seconds() - t0;
  size_t at = 0;  // predictions come in example order, one per scored token
  for (size_t i = 0; i < lines.size(); i++) {
    if (mc.head == HeadKind::sequence) {
      const std::string& label = labels[size_t(predicted[at++])];
      if (f.common.json) print_json({{"text", lines[i]}, {"label", label}});
      else std::printf("%s\n", label.c_str());
      continue;
    }
    int64_t scored = 0;
    for (int32_t t : examples[i].targets) scored += t >= 0;
    std::vector<std::string> tags;
    for (int64_t k = 0; k < scored; k++) tags.push_back(labels[size_t(predicted[at++])]);
    if (f.common.json) {
      print_json({{"words", std::vector<std::string>(words[i].begin(), words[i].begin() + scored)}, {"tags", tags}});
    } else {
      std::string out;
      for (int64_t k = 0; k < scored; k++) out += (k ? " " : "") + words[i][size_t(k)] + "/" + tags[size_t(k)];
      std::printf("%s\n", out.c_str());
    }
  }
  if (truncated) note(str("classify: ", truncated, " of ", lines.size(), " lines cut to ", max_len, " tokens"));
  note(str("classify: ", lines.size(), " lines in ", seconds, " s; forward passes ", 1e3 * forward / double(lines.size()),
           " ms per line (batches of ", std::min<int64_t>(f.batch, int64_t(lines.size())), ")"));
}
}  // namespace

void register_classify(CLI::App& app) {
  auto f = std::make_shared<ClassifyFlags>();
  auto* sub = app.add_subcommand("classify", "a fine-tuned encoder's labels for each line of a file (or each word)");
  sub->add_option("--ckpt", f->ckpt, "a run of `flopwise finetune`")->required();
  sub->add_option("--input", f->input, "text, one example per line")->required();
  sub->add_option("--batch", f->batch, "lines per forward pass (32)");
  f->common.add(sub);
  sub->callback([f]() { run_classify(*f); });
}

}  // namespace fw::cli
