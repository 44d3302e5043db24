#include "corpus/brown.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "core/error.h"

namespace fw {

uint16_t PosTags::id(const std::string& tag) {
  auto it = ids_.find(tag);
  if (it != ids_.end()) return it->second;
  FW_CHECK(names_.size() < 65535, "POS tags: more than 65535 distinct tags");
  names_.push_back(tag);
  return ids_[tag] = uint16_t(names_.size() - 1);
}

std::string simplify_brown_tag(const std::string& tag) {
  std::string t = tag;
  if (t.rfind("fw-", 0) == 0 && t.size() > 3) t = t.substr(3);
  for (bool again = true; again;) {  // markers can stack: "nn-tl-hl"
    again = false;
    for (const char* m : {"-tl", "-hl", "-nc"})
      if (t.size() > 3 && t.compare(t.size() - 3, 3, m) == 0) t.resize(t.size() - 3), again = true;
  }
  return t;
}

namespace {
bool attaches_left(const std::string& w) {  // no space before it
  static const char* kLeft[] = {".", ",", ";", ":", "?", "!", ")", "]", "}", "''", "...", "?!", "!!", "??"};
  for (const char* p : kLeft)
    if (w == p) return true;
  return false;
}
bool attaches_right(const std::string& w) { return w == "``" || w == "(" || w == "[" || w == "{"; }
}  // namespace

TaggedText detag_brown(const std::string& tagged, PosTags& tags, const std::string& where) {
  TaggedText out;
  std::istringstream lines(tagged);
  std::string line;
  int64_t line_no = 0;
  while (std::getline(lines, line)) {
    line_no++;
    std::istringstream words(line);
    std::string item;
    bool first = true, glue_next = false, single_open = false;
    while (words >> item) {
      const size_t slash = item.rfind('/');
      FW_CHECK(slash != std::string::npos && slash > 0 && slash + 1 < item.size(), where, ":", line_no,
               ": '", item, "' is not word/tag");
      std::string word = item.substr(0, slash);
      const std::string tag = simplify_brown_tag(item.substr(slash + 1));
      bool left = attaches_left(word), right = attaches_right(word);
      if (word == "'") {  // a lone single quote: opening, then closing
        (single_open ? left : right) = true;
        single_open = !single_open;
      }
      if (word == "``" || word == "''") word.assign(1, '"');  // (assign: GCC 12 warns falsely of overlap on = "\"")
      // a sentence-final period after an abbreviation ("Jr." + ".") prints once
      if (word == "." && !out.text.empty() && out.text.back() == '.' && glue_next == false && !first) continue;
      if (!first && !left && !glue_next) out.text += ' ';
      const uint32_t begin = uint32_t(out.text.size());
      out.text += word;
      out.words.push_back({begin, uint32_t(out.text.size()), tags.id(tag)});
      glue_next = right;
      first = false;
    }
    if (!first) out.text += '\n';
  }
  return out;
}

std::vector<std::string> brown_files(const std::string& dir) {
  namespace fs = std::filesystem;
  FW_CHECK(fs::is_directory(dir), dir, ": not a folder (fetch the Brown Corpus with scripts/fetch_brown.sh)");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.size() == 4 && n[0] == 'c' && n[1] >= 'a' && n[1] <= 'r' && std::isdigit(uint8_t(n[2])) &&
        std::isdigit(uint8_t(n[3])))
      files.push_back(e.path().string());
  }
  FW_CHECK(!files.empty(), dir, ": no Brown Corpus sample files (ca01 ... cr09)");
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<uint16_t> tags_of_tokens(const TaggedText& t, const std::vector<uint32_t>& starts) {
  std::vector<uint16_t> out(starts.size(), 0);
  size_t w = 0;
  for (size_t i = 0; i < starts.size(); i++) {
    const uint32_t end = i + 1 < starts.size() ? starts[i + 1] : uint32_t(t.text.size());
    uint32_t b = starts[i];
    while (b < end && (t.text[b] == ' ' || t.text[b] == '\n')) b++;
    if (b == end) continue;
    while (w < t.words.size() && t.words[w].end <= b) w++;
    if (w < t.words.size() && t.words[w].begin <= b) out[i] = t.words[w].tag;
  }
  return out;
}

bool brown_val_document(size_t i, double val_fraction) {
  return std::floor(double(i + 1) * val_fraction) > std::floor(double(i) * val_fraction);
}

std::string pos_class(const std::string& t) {
  const auto starts = [&](const char* p) { return t.rfind(p, 0) == 0; };
  if (t == "none") return "none";
  if (t == "." || t == "," || t == ":" || t == "(" || t == ")" || t == "``" || t == "''" || t == "'" || t == "--")
    return "punctuation";
  if (starts("nn") || starts("np") || starts("nr")) return "noun";
  if (starts("vb") || starts("be") || starts("hv") || starts("do") || t == "md" || starts("md")) return "verb";
  if (starts("jj")) return "adjective";
  if (starts("rb") || t == "ql" || t == "qlp" || starts("wrb") || t == "rp") return "adverb";
  if (starts("pp") || starts("wp") || t == "ex") return "pronoun";
  if (t == "at" || starts("dt") || t == "ap" || t == "abn" || t == "abx" || starts("wdt") || t == "abl") return "determiner";
  if (t == "in" || t == "to") return "preposition";
  if (t == "cc" || t == "cs") return "conjunction";
  if (t == "cd" || t == "od") return "number";
  return "other";
}

}  // namespace fw
