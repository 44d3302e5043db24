#include "finetune/tasks.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/rng.h"
#include "corpus/brown.h"

namespace fw {

namespace fs = std::filesystem;

namespace {

// Builds one example token by token, stopping at the context's length.
class ExampleBuilder {
 public:
  ExampleBuilder(const Tokenizer& tok, const ModelConfig& model, int64_t max_len)
      : tok_(&tok), sp_(model.special_tokens()), max_len_(max_len) {
    e_.tokens.push_back(sp_.cls);
    e_.targets.push_back(-1);
  }
  // `piece` as tokens; with a target, at the token holding piece[lead] (the word's first
  // byte after the whitespace before it). False once the context is full.
  bool add(const std::string& piece, size_t lead = 0, int32_t target = -1) {
    const std::vector<int32_t> ids = tok_->encode(piece);
    if (int64_t(e_.tokens.size() + ids.size()) > max_len_) return cut(ids);
    size_t at = 0;
    for (size_t i = 0, offset = 0; i < ids.size(); offset += tok_->token_bytes(ids[i]).size(), i++)
      if (offset + tok_->token_bytes(ids[i]).size() > lead) {
        at = i;
        break;
      }
    for (size_t i = 0; i < ids.size(); i++) {
      e_.tokens.push_back(ids[i]);
      e_.targets.push_back(i == at ? target : -1);
    }
    return true;
  }
  bool separator() { return add_special(sp_.sep); }
  void label(int32_t id) { e_.targets[0] = id; }
  bool truncated() const { return truncated_; }
  Example take() {
    e_.truncated = truncated_;
    return std::move(e_);
  }

 private:
  bool cut(const std::vector<int32_t>& ids) {  // what fits of a piece that does not
    for (int32_t id : ids) {
      if (int64_t(e_.tokens.size()) >= max_len_) break;
      e_.tokens.push_back(id);
      e_.targets.push_back(-1);
    }
    truncated_ = true;
    return false;
  }
  bool add_special(int32_t id) {
    if (int64_t(e_.tokens.size()) >= max_len_) return truncated_ = true, false;
    e_.tokens.push_back(id);
    e_.targets.push_back(-1);
    return true;
  }
  const Tokenizer* tok_;
  SpecialTokens sp_;
  int64_t max_len_;
  Example e_;
  bool truncated_ = false;
};

// Words joined by single spaces, each word's tag (≥ 0) at its first token; stops at
// the context's length.
Example tagged_words(const std::vector<std::string>& words, const std::vector<int32_t>& tags, const Tokenizer& tok,
                     const ModelConfig& model, int64_t max_len) {
  ExampleBuilder b(tok, model, max_len);
  for (size_t i = 0; i < words.size(); i++)
    if (!b.add((i ? " " : "") + words[i], i ? 1 : 0, tags[i])) break;
  return b.take();
}

// Label names ↔ ids: the sorted labels of train (or a fixed list); a label outside
// them is an error naming where it was.
class Labels {
 public:
  explicit Labels(std::vector<std::string> names) : names_(std::move(names)) {
    for (size_t i = 0; i < names_.size(); i++) ids_[names_[i]] = int32_t(i);
  }
  int32_t id(const std::string& name, const std::string& where) const {
    const auto it = ids_.find(name);
    FW_CHECK(it != ids_.end(), where, ": label '", name, "' is not one of the training labels");
    return it->second;
  }
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
  std::map<std::string, int32_t> ids_;
};

// A JSONL label: a string, or an integer written as one.
std::string label_text(const nlohmann::json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  FW_CHECK(v.is_number_integer() || v.is_boolean(), where, ": \"label\" must be a string or an integer, got ",
           v.dump());
  return v.dump();
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  FW_CHECK(in, path, ": missing (a JSONL task folder holds train.jsonl and val.jsonl)");
  std::vector<nlohmann::json> rows;
  std::string line;
  for (int64_t no = 1; std::getline(in, line); no++) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    FW_CHECK(!j.is_discarded() && j.is_object(), path, ":", no, ": not a JSON object");
    j["__line"] = no;
    rows.push_back(std::move(j));
  }
  FW_CHECK(!rows.empty(), path, ": no examples");
  return rows;
}

void load_jsonl(Task& t, const std::string& dir, const Tokenizer& tok, const ModelConfig& m, const TaskOptions& o) {
  const std::string train_path = (fs::path(dir) / "train.jsonl").string(), val_path = (fs::path(dir) / "val.jsonl").string();
  const std::vector<nlohmann::json> train = read_jsonl(train_path), val = read_jsonl(val_path);
  const bool tagging = train[0].contains("tokens");
  t.head = tagging ? HeadKind::tagging : HeadKind::sequence;
  auto where = [](const std::string& path, const nlohmann::json& j) { return str(path, ":", j["__line"].get<int64_t>()); };
  auto check_fields = [&](const std::string& path, const nlohmann::json& j) {
    const std::string w = where(path, j);
    if (tagging) {
      FW_CHECK(j.contains("tokens") && j["tokens"].is_array(), w, ": missing \"tokens\" (a list of words), as the first line has");
      FW_CHECK(j.contains("tags") && j["tags"].is_array(), w, ": missing \"tags\" (a list, one per word)");
      FW_CHECK(j["tokens"].size() == j["tags"].size(), w, ": ", j["tokens"].size(), " tokens but ", j["tags"].size(), " tags");
      for (const auto& word : j["tokens"]) FW_CHECK(word.is_string(), w, ": every entry of \"tokens\" must be a string");
    } else {
      FW_CHECK(j.contains("text") && j["text"].is_string(), w, ": missing \"text\" (a string)");
      FW_CHECK(j.contains("label"), w, ": missing \"label\"");
      FW_CHECK(!j.contains("text_pair") || j["text_pair"].is_string(), w, ": \"text_pair\" must be a string");
    }
  };
  std::vector<std::string> names;
  for (const auto& j : train) {
    check_fields(train_path, j);
    if (tagging)
      for (const auto& tag : j["tags"]) names.push_back(label_text(tag, where(train_path, j)));
    else
      names.push_back(label_text(j["label"], where(train_path, j)));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  FW_CHECK(names.size() >= 2, train_path, ": only one label ('", names[0], "'); a classifier needs two or more");
  const Labels labels(names);
  t.labels = labels.names();
  for (auto [rows, path, out] : {std::tuple{&train, &train_path, &t.train}, {&val, &val_path, &t.val}})
    for (const auto& j : *rows) {
      check_fields(*path, j);
      const std::string w = where(*path, j);
      if (tagging) {
        std::vector<int32_t> tags;
        for (const auto& tag : j["tags"]) tags.push_back(labels.id(label_text(tag, w), w));
        out->push_back(tagged_words(j["tokens"].get<std::vector<std::string>>(), tags, tok, m, o.max_len));
        continue;
      }
      ExampleBuilder b(tok, m, o.max_len);
      b.label(labels.id(label_text(j["label"], w), w));
      if (b.add(j["text"].get<std::string>()) && j.contains("text_pair") && b.separator())
        b.add(j["text_pair"].get<std::string>());
      out->push_back(b.take());
    }
}

// GLUE's TSV layouts: the text column(s) and the label column, by header name (CoLA has
// no header: by position), and the validation file's name.
struct GlueLayout {
  const char* name;
  const char *text, *pair, *label;  // pair: "" for single-sentence tasks
  const char* dev = "dev.tsv";
};
constexpr GlueLayout kGlue[] = {
    {"cola", "3", "", "1"},
    {"sst2", "sentence", "", "label"},
    {"mrpc", "#1 String", "#2 String", "Quality"},
    {"qqp", "question1", "question2", "is_duplicate"},
    {"mnli", "sentence1", "sentence2", "gold_label", "dev_matched.tsv"},
    {"qnli", "question", "sentence", "label"},
    {"rte", "sentence1", "sentence2", "label"},
    {"wnli", "sentence1", "sentence2", "label"},
};

std::vector<std::vector<std::string>> read_tsv(const std::string& path) {
  std::ifstream in(path);
  FW_CHECK(in, path, ": missing");
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, '\t');) cells.push_back(cell);
    if (!line.empty() && line.back() == '\t') cells.emplace_back();
    rows.push_back(std::move(cells));
  }
  return rows;
}

void load_glue(Task& t, const std::string& name, const std::string& dir, const Tokenizer& tok, const ModelConfig& m,
               const TaskOptions& o) {
  const GlueLayout* layout = nullptr;
  for (const auto& g : kGlue)
    if (name == g.name) layout = &g;
  if (!layout) {
    std::string known;
    for (const auto& g : kGlue) known += std::string(known.empty() ? "" : ", ") + g.name;
    fail("task glue:", name, ": unknown GLUE task (known: ", known, "; stsb is a regression and not supported)");
  }
  t.head = HeadKind::sequence;
  const bool header = std::string(layout->name) != "cola";
  struct Split {
    std::string path;
    std::vector<std::vector<std::string>> rows;
    size_t text, pair, label;
  };
  std::vector<Split> splits;
  for (const std::string& file : {std::string("train.tsv"), std::string(layout->dev)}) {
    Split s{(fs::path(dir) / file).string(), {}, 0, 0, 0};
    s.rows = read_tsv(s.path);
    auto column = [&](const char* col) -> size_t {
      if (!header) return size_t(std::stoul(col));
      FW_CHECK(!s.rows.empty(), s.path, ": empty (no header line)");
      const auto& h = s.rows[0];
      const auto it = std::find(h.begin(), h.end(), col);
      FW_CHECK(it != h.end(), s.path, ": no column '", col, "' in the header");
      return size_t(it - h.begin());
    };
    s.text = column(layout->text);
    s.pair = *layout->pair ? column(layout->pair) : 0;
    s.label = column(layout->label);
    if (header) s.rows.erase(s.rows.begin());
    FW_CHECK(!s.rows.empty(), s.path, ": no examples");
    const size_t need = std::max({s.text, s.pair, s.label}) + 1;
    for (size_t i = 0; i < s.rows.size(); i++)
      FW_CHECK(s.rows[i].size() >= need, s.path, ":", i + 1 + header, ": ", s.rows[i].size(), " columns, ", need,
               " needed");
    splits.push_back(std::move(s));
  }
  std::vector<std::string> names;
  for (const auto& r : splits[0].rows) names.push_back(r[splits[0].label]);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  FW_CHECK(names.size() >= 2, splits[0].path, ": only one label; a classifier needs two or more");
  const Labels labels(names);
  t.labels = labels.names();
  for (size_t k = 0; k < 2; k++)
    for (size_t i = 0; i < splits[k].rows.size(); i++) {
      const auto& r = splits[k].rows[i];
      ExampleBuilder b(tok, m, o.max_len);
      b.label(labels.id(r[splits[k].label], str(splits[k].path, ":", i + 1 + header)));
      if (b.add(r[splits[k].text]) && *layout->pair && b.separator()) b.add(r[splits[k].pair]);
      (k == 0 ? t.train : t.val).push_back(b.take());
    }
}

// Brown's 15 categories, by the letter after the "c" of a sample's file name.
constexpr const char* kBrownGenres = "abcdefghjklmnpr";
const std::vector<std::string> kBrownGenreNames = {
    "press-reportage", "press-editorial", "press-reviews",   "religion",  "skills-hobbies",
    "popular-lore",    "belles-lettres",  "miscellaneous",   "learned",   "general-fiction",
    "mystery",         "science-fiction", "adventure",       "romance",   "humor"};
const std::vector<std::string> kWordClasses = {"noun",        "verb",        "adjective", "adverb",
                                               "pronoun",     "determiner",  "preposition", "conjunction",
                                               "number",      "punctuation", "other",     "none"};

void load_brown(Task& t, bool genre, const Tokenizer& tok, const ModelConfig& m, const TaskOptions& o) {
  t.head = genre ? HeadKind::sequence : HeadKind::tagging;
  t.labels = genre ? kBrownGenreNames : kWordClasses;
  const Labels classes(kWordClasses);
  const std::vector<std::string> files = brown_files(o.brown_dir);
  PosTags tags;
  for (size_t i = 0; i < files.size(); i++) {
    const TaggedText text = detag_brown(read_file(files[i], "Brown sample"), tags, files[i]);
    std::vector<Example>& out = brown_val_document(i) ? t.val : t.train;
    const char letter = fs::path(files[i]).filename().string()[1];
    const int32_t genre_id = int32_t(std::string(kBrownGenres).find(letter));
    FW_CHECK(genre_id >= 0, files[i], ": category letter '", letter, "' is not one of Brown's 15");
    // sentences: the detagged text's lines, with the words inside each
    size_t w = 0, line_begin = 0;
    ExampleBuilder passage(tok, m, o.max_len);
    bool passage_empty = true;
    auto close_passage = [&] {
      if (!passage_empty) {
        passage.label(genre_id);
        out.push_back(passage.take());
      }
      passage = ExampleBuilder(tok, m, o.max_len);
      passage_empty = true;
    };
    while (line_begin < text.text.size()) {
      size_t line_end = text.text.find('\n', line_begin);
      if (line_end == std::string::npos) line_end = text.text.size();
      const std::string line = text.text.substr(line_begin, line_end - line_begin);
      if (genre) {  // consecutive sentences while they fit the context, then the next passage
        ExampleBuilder longer = passage;
        if (!longer.add(passage_empty ? line : "\n" + line) && !passage_empty) {
          close_passage();
          longer = passage;
          longer.add(line);
        }
        passage = longer;
        passage_empty = false;
        if (passage.truncated()) close_passage();  // a sentence longer than the context: alone, cut
      } else {  // one sentence, each word's class at its first token
        ExampleBuilder sentence(tok, m, o.max_len);
        size_t prev = line_begin;
        bool any = false;
        for (; w < text.words.size() && text.words[w].begin < line_end; w++) {
          const WordSpan& ws = text.words[w];
          const std::string piece = text.text.substr(prev, ws.end - prev);  // the space before, and the word
          any = true;
          if (!sentence.add(piece, ws.begin - prev, classes.id(pos_class(tags.names()[ws.tag]), files[i]))) break;
          prev = ws.end;
        }
        while (w < text.words.size() && text.words[w].begin < line_end) w++;  // words after a cut
        if (any) out.push_back(sentence.take());
      }
      line_begin = line_end + 1;
    }
    close_passage();
  }
}

}  // namespace

Example sequence_example(const std::string& text, const Tokenizer& tok, const ModelConfig& model, int64_t max_len) {
  ExampleBuilder b(tok, model, max_len);
  b.label(0);
  b.add(text);
  return b.take();
}

Example words_example(const std::vector<std::string>& words, const Tokenizer& tok, const ModelConfig& model,
                      int64_t max_len) {
  return tagged_words(words, std::vector<int32_t>(words.size(), 0), tok, model, max_len);
}

Task load_task(const std::string& spec, const Tokenizer& tok, const ModelConfig& model, const TaskOptions& opt) {
  FW_CHECK(model.encoder(), "task ", spec, ": fine-tuning needs an encoder (model.kind = 'encoder')");
  FW_CHECK(opt.max_len >= 2, "task ", spec, ": a context of ", opt.max_len, " tokens holds no text");
  Task t;
  t.spec = spec;
  if (spec == "brown-genre" || spec == "brown-pos") load_brown(t, spec == "brown-genre", tok, model, opt);
  else if (spec.rfind("glue:", 0) == 0) {
    const size_t colon = spec.find(':', 5);
    FW_CHECK(colon != std::string::npos, "task ", spec, ": expected glue:NAME:DIR");
    load_glue(t, spec.substr(5, colon - 5), spec.substr(colon + 1), tok, model, opt);
  } else {
    FW_CHECK(fs::is_directory(spec), "task ", spec,
             ": not a folder of train.jsonl and val.jsonl, nor brown-genre, brown-pos or glue:NAME:DIR");
    load_jsonl(t, spec, tok, model, opt);
  }
  for (auto [split, keep] : {std::pair{&t.train, opt.train_examples}, {&t.val, opt.val_examples}}) {
    if (keep <= 0 || keep >= int64_t(split->size())) continue;
    std::vector<size_t> pick(split->size());
    std::iota(pick.begin(), pick.end(), size_t(0));
    Rng rng(hash64(std::hash<std::string>{}(spec) ^ uint64_t(keep)));
    for (size_t i = 0; i < size_t(keep); i++) std::swap(pick[i], pick[i + size_t(rng.next_u64() % (pick.size() - i))]);
    pick.resize(size_t(keep));
    std::sort(pick.begin(), pick.end());
    std::vector<Example> kept;
    for (size_t i : pick) kept.push_back(std::move((*split)[i]));
    *split = std::move(kept);
  }
  for (const auto* split : {&t.train, &t.val})
    for (const Example& e : *split) t.truncated += e.truncated;
  FW_CHECK(!t.train.empty(), "task ", spec, ": no training examples");
  FW_CHECK(!t.val.empty(), "task ", spec, ": no validation examples");
  return t;
}

}  // namespace fw
