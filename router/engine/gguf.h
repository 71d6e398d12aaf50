// GgufFile: a read-only view of a GGUF v2/v3 file (https://github.com/ggml-org/ggml/blob/
// master/docs/gguf.md) in memory: its metadata key/values and its tensors.
//
// Validation: Open checks everything it reads before trusting it — magic, version, counts
// against the file size, string and array lengths, value types, tensor dimensions (product
// overflow), tensor types, alignment, and that every tensor's data lies inside the file and
// does not overlap another. A corrupt, truncated or lying file gets an error naming the file
// and what is wrong; never a crash, never an allocation sized by an unchecked field.
//
// Ownership: the file's bytes (mapped, or read into 2 MiB pages: Placement) are held for the
// object's lifetime; tensor data pointers and string_views returned by accessors point into
// them and die with the object.
// Threading: immutable after Open (and the owner's Rewrite, if any); every const method is safe
// from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "router/engine/result.h"
#include "router/engine/tensor_types.h"

namespace tidelane::engine {

// One metadata value. Arrays of strings and of numbers are materialised (they are small:
// vocabularies of ~150k entries at most); numbers keep their widest type.
struct GgufValue {
  using Array = std::vector<GgufValue>;
  std::variant<std::uint64_t, std::int64_t, double, bool, std::string, Array> value;

  // Typed reads; nullopt when the value has another type (integers convert when in range).
  std::optional<std::int64_t> AsInt() const;
  std::optional<double> AsFloat() const;  // integers convert too
  std::optional<bool> AsBool() const;
  const std::string* AsString() const;
  const Array* AsArray() const;
};

struct GgufTensor {
  std::string name;
  TensorType type = TensorType::kF32;
  std::vector<std::uint64_t> dims;  // dims[0] is the innermost (row length), as in ggml
  const std::uint8_t* data = nullptr;
  std::uint64_t bytes = 0;

  std::uint64_t Elements() const;
  std::uint64_t Rows() const { return dims.empty() || dims[0] == 0 ? 0 : Elements() / dims[0]; }
  std::uint64_t RowLength() const { return dims.empty() ? 0 : dims[0]; }
};

// Where Open keeps the file's bytes.
enum class Placement {
  // The file mapped read-only: Open is quick and touches only what it parses, the pages are
  // the page cache's (shared with other processes). For reading metadata, and what a copy
  // that would not fit falls back to.
  kMapped,
  // Read whole into anonymous memory in 2 MiB pages (where transparent huge pages are not off),
  // read-only once filled: a pass that streams every weight then takes no TLB miss per 4 KiB
  // (batch-1 decode ~40% faster with F16 weights, ~10% with Q8_0 and Q4_K; gguf.cc). Costs
  // reading the whole file in Open and a copy of it per process.
  kHugePages,
};

// The placement Open(kHugePages) takes for a file of `file_bytes`: kHugePages while the copy
// fits in `available_bytes` (the kernel's MemAvailable) with room to spare, else kMapped — a
// copy that does not fit would get the process killed for memory, where a mapping pages from
// the file. Unknown availability keeps `wanted`. kMapped stays kMapped.
Placement PlacementFor(Placement wanted, std::uint64_t file_bytes,
                       std::optional<std::uint64_t> available_bytes);

class GgufFile {
 public:
  // Opens and validates `path`, its bytes placed as `placement` says (kHugePages falls back to
  // kMapped where the copy would not fit: PlacementFor). Errors name the file and the first
  // problem found (or why it could not be read).
  static Result<std::unique_ptr<GgufFile>> Open(const std::filesystem::path& path,
                                                Placement placement = Placement::kMapped);
  // Parses and validates an in-memory image (no copy; `bytes` must outlive the object). Used by
  // the fuzzer and by tests that build files in memory.
  static Result<std::unique_ptr<GgufFile>> FromMemory(std::span<const std::uint8_t> bytes,
                                                      std::string name = "<memory>");
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  std::uint32_t version() const { return version_; }
  Placement placement() const { return placement_; }  // where the bytes are (FromMemory: kMapped)
  const std::string& name() const { return name_; }
  std::uint64_t file_bytes() const { return bytes_.size(); }

  // Metadata. Find returns nullptr when the key is absent.
  const GgufValue* Find(std::string_view key) const;
  std::optional<std::int64_t> GetInt(std::string_view key) const;
  std::optional<double> GetFloat(std::string_view key) const;
  std::optional<bool> GetBool(std::string_view key) const;
  std::optional<std::string> GetString(std::string_view key) const;
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }

  // The engine's own rearrangement of its private copy (kHugePages) before use: makes the bytes
  // writable, runs `edit` on them (the span tensors' data pointers point into), and makes them
  // read-only again (also when `edit` throws). Returns false, doing nothing, for a mapping
  // (kMapped, FromMemory), whose bytes are the file's or the caller's, and when the bytes cannot
  // be made writable.
  bool Rewrite(const std::function<void(std::span<std::uint8_t>)>& edit);

  // Tensors, in file order. FindTensor returns nullptr when absent.
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* FindTensor(std::string_view name) const;

 private:
  GgufFile() = default;
  Status Parse();

  std::string name_;
  std::span<const std::uint8_t> bytes_;
  void* map_ = nullptr;
  std::size_t map_size_ = 0;
  Placement placement_ = Placement::kMapped;
  std::uint32_t version_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<GgufTensor> tensors_;
};

}  // namespace tidelane::engine
