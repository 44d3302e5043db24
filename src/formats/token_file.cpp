#include "formats/token_file.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <cerrno>
#include <climits>
#include <cstring>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "formats/atomic_file.h"

namespace fw {

namespace fs = std::filesystem;

std::vector<int32_t> read_token_file(const std::string& path) {
  require_readable_file(path, "token file");
  std::ifstream in(path, std::ios::binary);
  FW_CHECK(in, path, ": cannot open token file");
  in.seekg(0, std::ios::end);
  const int64_t size = in.tellg();
  in.seekg(0);
  FW_CHECK(size >= 1024, path, ": not a token file (", size, " bytes, shorter than the 1024-byte header)");
  int32_t header[256];
  in.read(reinterpret_cast<char*>(header), sizeof(header));
  int64_t width = 0;
  if (header[0] == kTokenMagic16) {
    FW_CHECK(header[1] == kTokenVersion16, path, ": version ", header[1], " with magic ",
             kTokenMagic16, " (expected ", kTokenVersion16, ")");
    width = 2;
  } else if (header[0] == kTokenMagic32) {
    FW_CHECK(header[1] == kTokenVersion32, path, ": version ", header[1], " with magic ",
             kTokenMagic32, " (expected ", kTokenVersion32, ")");
    width = 4;
  } else {
    fail(path, ": wrong magic number ", header[0], " (expected ", kTokenMagic16, " or ",
         kTokenMagic32, ": not an llm.c token file)");
  }
  const int64_t count = header[2];
  FW_CHECK(count >= 0, path, ": negative token count ", count);
  FW_CHECK(size == 1024 + count * width, path, ": truncated or padded: header says ", count,
           " tokens (", 1024 + count * width, " bytes) but the file has ", size, " bytes");
  std::vector<int32_t> tokens(static_cast<size_t>(count));
  if (width == 2) {
    std::vector<uint16_t> raw(static_cast<size_t>(count));
    in.read(reinterpret_cast<char*>(raw.data()), count * 2);
    for (int64_t i = 0; i < count; i++) tokens[size_t(i)] = raw[size_t(i)];
  } else {
    std::vector<uint32_t> raw(static_cast<size_t>(count));
    in.read(reinterpret_cast<char*>(raw.data()), count * 4);
    for (int64_t i = 0; i < count; i++) {
      FW_CHECK(raw[size_t(i)] < (1u << 31), path, ": token ", i, " = ", raw[size_t(i)], " out of range");
      tokens[size_t(i)] = int32_t(raw[size_t(i)]);
    }
  }
  FW_CHECK(in, path, ": read error");
  return tokens;
}

void write_token_file(const std::string& path, const std::vector<int32_t>& tokens) {
  int32_t max_id = 0;
  for (int32_t t : tokens) {
    FW_CHECK(t >= 0, path, ": negative token id ", t);
    max_id = std::max(max_id, t);
  }
  FW_CHECK(tokens.size() < (size_t(1) << 31), path, ": too many tokens for one file");
  const bool wide = max_id > 65535;
  int32_t header[256] = {};
  header[0] = wide ? kTokenMagic32 : kTokenMagic16;
  header[1] = wide ? kTokenVersion32 : kTokenVersion16;
  header[2] = int32_t(tokens.size());
  std::string bytes(reinterpret_cast<const char*>(header), sizeof(header));
  if (wide) {
    std::vector<uint32_t> raw(tokens.begin(), tokens.end());
    bytes.append(reinterpret_cast<const char*>(raw.data()), raw.size() * 4);
  } else {
    std::vector<uint16_t> raw(tokens.begin(), tokens.end());
    bytes.append(reinterpret_cast<const char*>(raw.data()), raw.size() * 2);
  }
  write_file_atomic(path, bytes);
}

TokenFileWriter::TokenFileWriter(std::string path, bool wide)
    : path_(std::move(path)), tmp_(path_ + ".tmp"), wide_(wide) {
  f_ = std::fopen(tmp_.c_str(), "wb");
  FW_CHECK(f_, tmp_, ": cannot create (", std::strerror(errno), ")");
  const int32_t header[256] = {};
  FW_CHECK(std::fwrite(header, sizeof(header), 1, f_) == 1, tmp_, ": write error");
}

TokenFileWriter::~TokenFileWriter() {
  if (f_) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

void TokenFileWriter::put(int64_t id) {
  FW_CHECK(id >= 0 && id <= (wide_ ? int64_t(INT32_MAX) : 65535), path_, ": token id ", id, " does not fit");
  FW_CHECK(count_ < INT32_MAX, path_, ": too many tokens for one file");
  bool ok;
  if (wide_) {
    const uint32_t v = uint32_t(id);
    ok = std::fwrite(&v, 4, 1, f_) == 1;
  } else {
    const uint16_t v = uint16_t(id);
    ok = std::fwrite(&v, 2, 1, f_) == 1;
  }
  FW_CHECK(ok, tmp_, ": write error (disk full?)");
  count_++;
}

void TokenFileWriter::finish() {
  int32_t header[3] = {wide_ ? kTokenMagic32 : kTokenMagic16, wide_ ? kTokenVersion32 : kTokenVersion16,
                       int32_t(count_)};
  bool ok = std::fseek(f_, 0, SEEK_SET) == 0 && std::fwrite(header, sizeof(header), 1, f_) == 1 &&
            std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0;
  ok = std::fclose(f_) == 0 && ok;
  f_ = nullptr;
  if (!ok) std::remove(tmp_.c_str());
  FW_CHECK(ok, tmp_, ": write error (disk full?)");
  fs::rename(tmp_, path_);
}

DataFiles find_data_files(const std::string& dir) {
  FW_CHECK(fs::is_directory(dir), dir, ": data folder not found");
  DataFiles f;
  if (fs::exists(fs::path(dir) / "train.bin")) f.train = (fs::path(dir) / "train.bin").string();
  if (fs::exists(fs::path(dir) / "val.bin")) f.val = (fs::path(dir) / "val.bin").string();
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (f.train.empty() && name.ends_with("_train.bin")) f.train = e.path().string();
    if (f.val.empty() && name.ends_with("_val.bin")) f.val = e.path().string();
  }
  FW_CHECK(!f.train.empty(), dir, ": no train.bin (or *_train.bin) token file");
  FW_CHECK(!f.val.empty(), dir, ": no val.bin (or *_val.bin) token file");
  return f;
}

std::string data_folder_tokenizer(const std::string& dir, int64_t vocab_size, int64_t special) {
  const fs::path meta = fs::path(dir) / "meta.json";
  if (!fs::exists(meta)) return "unknown";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(std::ifstream(meta));
  } catch (const nlohmann::json::exception&) {
    fail(meta.string(), ": invalid JSON");
  }
  FW_CHECK(j.is_object() && j.contains("tokenizer") && j["tokenizer"].is_string(), meta.string(),
           ": lacks a \"tokenizer\" string");
  const std::string name = j["tokenizer"].get<std::string>();
  const int64_t v = j.value("vocab_size", int64_t(0));
  FW_CHECK(v <= vocab_size - special, meta.string(), ": tokenizer '", name, "' has vocab ", v,
           " but model.vocab_size = ", vocab_size,
           special > 0 ? str(", of which the last ", special, " are the encoder's special tokens: use at least ",
                             v + special)
                       : std::string());
  return name;
}

}  // namespace fw
