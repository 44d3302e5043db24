// The safetensors format: 8-byte little-endian header length N, N bytes of JSON
// ({name: {dtype, shape, data_offsets}} plus a "__metadata__" map of strings), then
// the raw little-endian tensor bytes. flopwise writes and reads F32 tensors.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fw {

struct SafeTensor {
  std::string name;
  std::vector<int64_t> shape;
  const float* data;  // numel(shape) floats
};

// Writes atomically (temp file, fsync, rename).
void write_safetensors(const std::string& path, const std::vector<SafeTensor>& tensors,
                       const std::map<std::string, std::string>& metadata);

// Writes and fsyncs PATH's temporary only, returning its name for commit_temp
// (formats/atomic_file.h): for files that must be replaced together.
std::string write_safetensors_temp(const std::string& path, const std::vector<SafeTensor>& tensors,
                                   const std::map<std::string, std::string>& metadata);

// A safetensors file read into memory and validated: header JSON well formed,
// every tensor's offsets inside the data, sizes matching dtype × shape.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Metadata value, or an error naming the file and key when absent.
  const std::string& meta(const std::string& key) const;
  bool has(const std::string& name) const { return entries_.count(name) > 0; }
  std::vector<std::string> names() const;
  size_t data_bytes() const { return data_.size(); }  // all tensor bytes
  // Copies tensor `name` into out after checking it is F32 with exactly `shape`.
  void read_f32(const std::string& name, const std::vector<int64_t>& shape, float* out) const;

 private:
  struct Entry {
    std::string dtype;
    std::vector<int64_t> shape;
    size_t begin, end;
  };
  std::string path_;
  std::string data_;  // the byte buffer after the header
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace fw
