// GgufBuilder: writes small GGUF v3 images in memory so loader tests can craft valid files and
// then break them in precise ways (truncate, lie about counts, misalign, overlap).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace tidelane::engine::testing {

class GgufBuilder {
 public:
  void KvU32(const std::string& key, std::uint32_t v) {
    Key(key, 4);
    Put(v);
    ++kv_;
  }
  void KvF32(const std::string& key, float v) {
    Key(key, 6);
    Put(v);
    ++kv_;
  }
  void KvString(const std::string& key, const std::string& v) {
    Key(key, 8);
    Str(v);
    ++kv_;
  }
  void KvStrings(const std::string& key, const std::vector<std::string>& v) {
    Key(key, 9);
    Put(std::uint32_t{8});
    Put(std::uint64_t{v.size()});
    for (const auto& s : v) Str(s);
    ++kv_;
  }
  // A tensor of `type` with `dims` (ggml order) and raw `data`, placed at the next aligned offset.
  void Tensor(const std::string& name, std::uint32_t type, std::vector<std::uint64_t> dims,
              std::vector<std::uint8_t> data) {
    Str(name, &infos_);
    Put(std::uint32_t(dims.size()), &infos_);
    for (auto d : dims) Put(d, &infos_);
    Put(type, &infos_);
    while (data_.size() % 32 != 0) data_.push_back(0);
    Put(std::uint64_t{data_.size()}, &infos_);
    data_.insert(data_.end(), data.begin(), data.end());
    ++tensors_;
  }
  std::vector<std::uint8_t> Build() const {
    std::vector<std::uint8_t> out;
    Put(std::uint32_t{0x46554747}, &out);
    Put(std::uint32_t{3}, &out);
    Put(std::uint64_t{tensors_}, &out);
    Put(std::uint64_t{kv_}, &out);
    out.insert(out.end(), kvs_.begin(), kvs_.end());
    out.insert(out.end(), infos_.begin(), infos_.end());
    while (out.size() % 32 != 0) out.push_back(0);
    out.insert(out.end(), data_.begin(), data_.end());
    return out;
  }

 private:
  template <typename T>
  static void Put(T v, std::vector<std::uint8_t>* out) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    out->insert(out->end(), p, p + sizeof(T));
  }
  template <typename T>
  void Put(T v) {
    Put(v, &kvs_);
  }
  static void Str(const std::string& s, std::vector<std::uint8_t>* out) {
    Put(std::uint64_t{s.size()}, out);
    out->insert(out->end(), s.begin(), s.end());
  }
  void Str(const std::string& s) { Str(s, &kvs_); }
  void Key(const std::string& key, std::uint32_t type) {
    Str(key);
    Put(type);
  }

  std::vector<std::uint8_t> kvs_, infos_, data_;
  std::uint64_t kv_ = 0, tensors_ = 0;
};

}  // namespace tidelane::engine::testing
