#include "tokenizers/gpt2_bpe.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "tokenizers/utf8.h"

namespace fw {

// ---- Unicode classes of GPT-2's pattern ----------------------------------------------

namespace {
struct CodeRange {
  uint32_t lo, hi;
};
#include "tokenizers/unicode_classes.inc"

enum class CharClass : uint8_t { Letter, Number, Space, Other };

template <size_t N>
bool in_ranges(const CodeRange (&r)[N], uint32_t cp) {
  const CodeRange* it = std::upper_bound(r, r + N, cp, [](uint32_t c, const CodeRange& x) { return c < x.lo; });
  return it != r && cp <= (it - 1)->hi;
}

CharClass classify(uint32_t cp) {
  if (in_ranges(kLetterRanges, cp)) return CharClass::Letter;
  if (in_ranges(kNumberRanges, cp)) return CharClass::Number;
  if (in_ranges(kSpaceRanges, cp)) return CharClass::Space;
  return CharClass::Other;
}

// One code point of the text: its bytes and class. A byte that does not begin a
// well-formed UTF-8 sequence is a character of its own, of class Other.
struct Char {
  uint32_t cp, begin, len;
  CharClass cls;
};

std::vector<Char> decode_chars(std::string_view s) {
  static const auto ascii = [] {  // the common case without a table search
    std::array<CharClass, 128> t{};
    for (uint32_t c = 0; c < 128; c++) t[c] = classify(c);
    return t;
  }();
  std::vector<Char> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    uint32_t n = utf8_decode(s, i, cp);
    if (n == 0) n = 1, cp = 0xFFFFFFFF;  // a stray byte
    const CharClass cls = cp < 128 ? ascii[cp] : cp == 0xFFFFFFFF ? CharClass::Other : classify(cp);
    out.push_back({cp, uint32_t(i), n, cls});
    i += n;
  }
  return out;
}
}  // namespace

std::vector<uint32_t> gpt2_pretokenize(std::string_view text) {
  const std::vector<Char> c = decode_chars(text);
  const size_t n = c.size();
  std::vector<uint32_t> cuts;
  const auto run_end = [&](size_t i, CharClass cls) {  // end of the run of `cls` from i
    while (i < n && c[i].cls == cls) i++;
    return i;
  };
  for (size_t i = 0; i < n;) {
    cuts.push_back(c[i].begin);
    size_t end = 0;
    // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive)
    if (c[i].cp == '\'' && i + 1 < n) {
      const uint32_t a = c[i + 1].cp, b = i + 2 < n ? c[i + 2].cp : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') end = i + 2;
      else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) end = i + 3;
    }
    if (!end) {
      // ' ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+': an optional space, then a run of one class
      const size_t j = c[i].cp == ' ' && i + 1 < n && c[i + 1].cls != CharClass::Space ? i + 1 : i;
      if (c[j].cls != CharClass::Space) {
        end = run_end(j, c[j].cls);
      } else {
        // '\s+(?!\S)|\s+': a whitespace run, leaving its last character to the next
        // piece when a non-space follows (so " word" keeps its space)
        const size_t e = run_end(i, CharClass::Space);
        end = e == n || e - i == 1 ? e : e - 1;
      }
    }
    i = end;
  }
  return cuts;
}

// ---- The tokenizer ---------------------------------------------------------------------

namespace {
// GPT-2 writes each byte as a printable character: bytes that print as themselves in
// Latin-1 stay, the other 68 map to U+0100 onwards in byte order.
std::array<uint32_t, 256> byte_to_char() {
  std::array<uint32_t, 256> m{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; b++) {
    const bool prints = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    m[b] = prints ? b : next++;
  }
  return m;
}

// A vocabulary string (UTF-8 of those characters) back to the bytes it stands for.
bool vocab_string_to_bytes(const std::string& s, const std::unordered_map<uint32_t, uint8_t>& char_to_byte,
                           std::string& out) {
  out.clear();
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    const uint32_t n = utf8_decode(s, i, cp);
    if (n == 0) return false;
    i += n;
    auto it = char_to_byte.find(cp);
    if (it == char_to_byte.end()) return false;
    out.push_back(char(it->second));
  }
  return true;
}
}  // namespace

Gpt2Tokenizer::Gpt2Tokenizer(const std::string& dir) : dir_(dir) {
  const std::string enc_path = dir + "/encoder.json", bpe_path = dir + "/vocab.bpe";
  for (const auto& p : {enc_path, bpe_path})
    FW_CHECK(std::ifstream(p).good(), p,
             ": missing (gpt2 tokenizer files: run scripts/fetch.sh gpt2, or give gpt2:DIR with encoder.json and vocab.bpe)");
  std::unordered_map<uint32_t, uint8_t> char_to_byte;
  const auto b2c = byte_to_char();
  for (uint32_t b = 0; b < 256; b++) char_to_byte[b2c[b]] = uint8_t(b);

  nlohmann::json enc;
  try {
    enc = nlohmann::json::parse(std::ifstream(enc_path));
  } catch (const nlohmann::json::exception& e) {
    fail(enc_path, ": invalid JSON (", e.what(), ")");
  }
  FW_CHECK(enc.is_object() && !enc.empty(), enc_path, ": not a JSON object of token → id");
  std::unordered_map<std::string, int32_t> id_of;  // vocabulary string → id
  bytes_of_.assign(enc.size(), std::string());
  std::vector<bool> seen(enc.size(), false);
  std::string bytes;
  for (auto it = enc.begin(); it != enc.end(); ++it) {
    FW_CHECK(it.value().is_number_integer(), enc_path, ": id of '", it.key(), "' is not an integer");
    const int64_t id = it.value().get<int64_t>();
    FW_CHECK(id >= 0 && id < int64_t(enc.size()) && !seen[size_t(id)], enc_path, ": id ", id, " of '", it.key(),
             "' is out of range or repeated (ids must be 0..", enc.size() - 1, ")");
    seen[size_t(id)] = true;
    id_of[it.key()] = int32_t(id);
    if (it.key() == "<|endoftext|>") {
      eot_ = int32_t(id);
      continue;  // a special token: it stands for no bytes of text
    }
    FW_CHECK(vocab_string_to_bytes(it.key(), char_to_byte, bytes), enc_path, ": token '", it.key(),
             "' has a character outside GPT-2's byte alphabet");
    bytes_of_[size_t(id)] = bytes;
  }
  FW_CHECK(eot_ >= 0, enc_path, ": no <|endoftext|> token");
  for (uint32_t b = 0; b < 256; b++) {
    std::string ch;
    const uint32_t cp = b2c[b];  // UTF-8 of the byte's character
    if (cp < 0x80) ch = char(cp);
    else ch = {char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))};
    auto it = id_of.find(ch);
    FW_CHECK(it != id_of.end(), enc_path, ": no token for byte ", b);
    byte_id_[b] = it->second;
  }

  // vocab.bpe: a version line, then one merge "left right" per line, by rank.
  std::vector<std::string> lines;
  {
    const std::string all = read_file(bpe_path, "GPT-2 merges file");
    for (size_t at = 0;;) {  // split on '\n' exactly, keeping a last empty line
      const size_t nl = all.find('\n', at);
      lines.push_back(all.substr(at, nl == std::string::npos ? std::string::npos : nl - at));
      if (nl == std::string::npos) break;
      at = nl + 1;
    }
  }
  FW_CHECK(lines.size() >= 2 && lines[0].rfind("#version", 0) == 0, bpe_path,
           ":1: expected a '#version' line first");
  // like the reference, drop the first line and the last (empty when the file ends in a newline)
  const size_t last = lines.size() - 1;
  for (size_t r = 1; r < last; r++) {
    std::istringstream ls(lines[r]);
    std::string a, b, extra;
    FW_CHECK(ls >> a >> b && !(ls >> extra), bpe_path, ":", r + 1, ": expected two symbols 'left right'");
    FW_CHECK(id_of.count(a) && id_of.count(b) && id_of.count(a + b), bpe_path, ":", r + 1, ": merge '", a, " ", b,
             "' uses a token missing from encoder.json");
    const uint64_t pair = uint64_t(uint32_t(id_of[a])) << 32 | uint32_t(id_of[b]);
    merges_.try_emplace(pair, Merge{int32_t(r - 1), id_of[a + b]});
  }
}

const std::string& Gpt2Tokenizer::token_bytes(int32_t id) const {
  FW_CHECK(id >= 0 && id < vocab_size(), "gpt2 tokenizer: token id ", id, " out of range [0, ", vocab_size(), ")");
  return bytes_of_[size_t(id)];
}

void Gpt2Tokenizer::bpe(std::string_view piece, std::vector<int32_t>& out) const {
  std::vector<int32_t> w(piece.size());
  for (size_t i = 0; i < piece.size(); i++) w[i] = byte_id_[uint8_t(piece[i])];
  const auto key = [&](size_t i) { return uint64_t(uint32_t(w[i])) << 32 | uint32_t(w[i + 1]); };
  while (w.size() > 1) {
    // the lowest-ranked pair present (ranks are unique), merged wherever it occurs
    const Merge* best = nullptr;
    size_t at = 0;
    for (size_t i = 0; i + 1 < w.size(); i++) {
      auto it = merges_.find(key(i));
      if (it != merges_.end() && (!best || it->second.rank < best->rank)) best = &it->second, at = i;
    }
    if (!best) break;
    const int32_t first = w[at], second = w[at + 1];
    size_t o = 0;
    for (size_t i = 0; i < w.size(); o++) {
      if (i + 1 < w.size() && w[i] == first && w[i + 1] == second) w[o] = best->merged, i += 2;
      else w[o] = w[i], i++;
    }
    w.resize(o);
  }
  out.insert(out.end(), w.begin(), w.end());
}

std::vector<int32_t> Gpt2Tokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3);
  const std::vector<uint32_t> cuts = gpt2_pretokenize(text);
  for (size_t i = 0; i < cuts.size(); i++) {
    const size_t end = i + 1 < cuts.size() ? cuts[i + 1] : text.size();
    const std::string_view piece(text.data() + cuts[i], end - cuts[i]);
    if (piece.size() > 64) {  // long runs (whitespace, digits) are rare; don't cache them
      bpe(piece, ids);
      continue;
    }
    auto it = cache_.find(std::string(piece));
    if (it == cache_.end()) {
      if (cache_.size() > (1u << 20)) cache_.clear();
      std::vector<int32_t> p;
      bpe(piece, p);
      it = cache_.emplace(std::string(piece), std::move(p)).first;
    }
    ids.insert(ids.end(), it->second.begin(), it->second.end());
  }
  return ids;
}

}  // namespace fw
