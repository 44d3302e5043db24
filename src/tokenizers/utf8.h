// Well-formed UTF-8 as Unicode defines it (no overlong forms, no surrogates, nothing
// above U+10FFFF), for tokenizers that must also carry bytes that are not.
#pragma once
#include <cstdint>
#include <string_view>

namespace fw {

// The length (1-4) of the well-formed character at s[i], with its code point in cp;
// 0 when the bytes there do not form one.
inline uint32_t utf8_decode(std::string_view s, size_t i, uint32_t& cp) {
  const auto b = [&](size_t k) { return k < s.size() ? uint8_t(s[k]) : uint8_t(0); };
  const auto cont = [&](size_t k) { return (b(k) & 0xC0) == 0x80; };
  const uint8_t c = b(i);
  if (c < 0x80) return cp = c, 1;
  if (c >= 0xC2 && c <= 0xDF && cont(i + 1)) return cp = (c & 0x1Fu) << 6 | (b(i + 1) & 0x3Fu), 2;
  if (c >= 0xE0 && c <= 0xEF && cont(i + 1) && cont(i + 2)) {
    cp = (c & 0x0Fu) << 12 | (b(i + 1) & 0x3Fu) << 6 | (b(i + 2) & 0x3Fu);
    if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) return 3;
  }
  if (c >= 0xF0 && c <= 0xF4 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
    cp = (c & 0x07u) << 18 | (b(i + 1) & 0x3Fu) << 12 | (b(i + 2) & 0x3Fu) << 6 | (b(i + 3) & 0x3Fu);
    if (cp >= 0x10000 && cp <= 0x10FFFF) return 4;
  }
  return 0;
}

// Whether all of s is well-formed UTF-8.
inline bool utf8_valid(std::string_view s) {
  uint32_t cp;
  for (size_t i = 0, n; i < s.size(); i += n)
    if ((n = utf8_decode(s, i, cp)) == 0) return false;
  return true;
}

}  // namespace fw
