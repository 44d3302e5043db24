#include "formats/safetensors.h"

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/files.h"
#include "formats/atomic_file.h"

namespace fw {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

static size_t numel(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (auto d : shape) n *= size_t(d);
  return n;
}

void write_safetensors(const std::string& path, const std::vector<SafeTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  commit_temp(write_safetensors_temp(path, tensors, metadata), path);
}

std::string write_safetensors_temp(const std::string& path, const std::vector<SafeTensor>& tensors,
                                   const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const auto& t : tensors) {
    const size_t bytes = numel(t.shape) * sizeof(float);
    header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // pad so tensor data starts 8-byte aligned
  uint64_t n = json.size();
  std::vector<const void*> parts = {&n, json.data()};
  std::vector<size_t> sizes = {8, json.size()};
  for (const auto& t : tensors) {
    parts.push_back(t.data);
    sizes.push_back(numel(t.shape) * sizeof(float));
  }
  return write_temp(path, parts.data(), sizes.data(), parts.size());
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  require_readable_file(path, "checkpoint file");
  std::ifstream in(path, std::ios::binary);
  FW_CHECK(in, path, ": cannot open checkpoint file");
  in.seekg(0, std::ios::end);
  const uint64_t size = uint64_t(in.tellg());
  in.seekg(0);
  FW_CHECK(size >= 8, path, ": not a safetensors file (", size, " bytes)");
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  FW_CHECK(n >= 2 && n <= size - 8 && n <= (uint64_t(100) << 20), path,
           ": torn or not a safetensors file (header length ", n, ", file size ", size, ")");
  std::string json(n, '\0');
  in.read(json.data(), std::streamsize(n));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception&) {
    fail(path, ": torn or corrupt safetensors header (invalid JSON)");
  }
  FW_CHECK(header.is_object(), path, ": safetensors header is not a JSON object");
  data_.resize(size - 8 - n);
  in.read(data_.data(), std::streamsize(data_.size()));
  FW_CHECK(in, path, ": read error");
  size_t covered = 0;
  for (const auto& [name, e] : header.items()) {
    if (name == "__metadata__") {
      FW_CHECK(e.is_object(), path, ": __metadata__ must be a map of strings");
      for (const auto& [k, v] : e.items()) {
        FW_CHECK(v.is_string(), path, ": __metadata__.", k, " is not a string");
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    FW_CHECK(e.is_object() && e.contains("dtype") && e.contains("shape") && e.contains("data_offsets"),
             path, ": tensor '", name, "' lacks dtype/shape/data_offsets");
    Entry en;
    try {
      en.dtype = e["dtype"].get<std::string>();
      en.shape = e["shape"].get<std::vector<int64_t>>();
      auto off = e["data_offsets"].get<std::vector<uint64_t>>();
      FW_CHECK(off.size() == 2, path, ": tensor '", name, "' data_offsets must have 2 entries");
      en.begin = off[0];
      en.end = off[1];
    } catch (const nlohmann::json::exception&) {
      fail(path, ": tensor '", name, "' has malformed dtype/shape/data_offsets");
    }
    for (auto d : en.shape) FW_CHECK(d >= 0, path, ": tensor '", name, "' has a negative dimension");
    FW_CHECK(en.begin <= en.end && en.end <= data_.size(), path, ": tensor '", name,
             "' lies outside the file (bytes ", en.begin, "..", en.end, " of ", data_.size(),
             "): truncated checkpoint");
    const size_t width = en.dtype == "F32" || en.dtype == "I32" || en.dtype == "U32" ? 4
                         : en.dtype == "F64" || en.dtype == "I64" || en.dtype == "U64" ? 8
                         : en.dtype == "F16" || en.dtype == "BF16" || en.dtype == "I16" ? 2 : 1;
    FW_CHECK(en.end - en.begin == numel(en.shape) * width, path, ": tensor '", name,
             "' has ", en.end - en.begin, " bytes, its dtype and shape need ", numel(en.shape) * width);
    covered = std::max(covered, size_t(en.end));
    entries_[name] = en;
  }
  FW_CHECK(covered == data_.size(), path, ": ", data_.size() - covered,
           " bytes after the last tensor: not a clean safetensors file");
}

const std::string& SafetensorsFile::meta(const std::string& key) const {
  auto it = metadata_.find(key);
  FW_CHECK(it != metadata_.end(), path_, ": metadata lacks '", key, "' (not a flopwise checkpoint?)");
  return it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : entries_) out.push_back(k);
  return out;
}

void SafetensorsFile::read_f32(const std::string& name, const std::vector<int64_t>& shape,
                               float* out) const {
  auto it = entries_.find(name);
  FW_CHECK(it != entries_.end(), path_, ": tensor '", name, "' missing");
  const Entry& e = it->second;
  FW_CHECK(e.dtype == "F32", path_, ": tensor '", name, "' has dtype ", e.dtype, ", expected F32");
  FW_CHECK(e.shape == shape, path_, ": tensor '", name, "' has shape ", shape_str(e.shape),
           ", the config expects ", shape_str(shape));
  std::memcpy(out, data_.data() + e.begin, e.end - e.begin);
}

}  // namespace fw
