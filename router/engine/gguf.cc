#include "router/engine/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <unordered_set>

namespace tidelane::engine {
namespace {

constexpr std::uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr std::uint32_t kMaxDims = 4;         // ggml's GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 4;
constexpr std::uint64_t kMaxStringBytes = 1ULL << 26;

enum ValueType : std::uint32_t {
  kU8 = 0,
  kI8,
  kU16,
  kI16,
  kU32,
  kI32,
  kF32,
  kBool,
  kString,
  kArray,
  kU64,
  kI64,
  kF64,
};

// Fixed width of a scalar value type; 0 for string/array/unknown.
std::size_t ScalarBytes(std::uint32_t t) {
  switch (t) {
    case kU8:
    case kI8:
    case kBool:
      return 1;
    case kU16:
    case kI16:
      return 2;
    case kU32:
    case kI32:
    case kF32:
      return 4;
    case kU64:
    case kI64:
    case kF64:
      return 8;
    default:
      return 0;
  }
}

// A bounds-checked cursor over the file image. Every read reports failure instead of reading
// past the end; the first failure sticks and carries its message.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> b) : b_(b) {}
  std::uint64_t pos() const { return pos_; }
  std::uint64_t remaining() const { return b_.size() - pos_; }

  template <typename T>
  bool Read(T* out) {
    if (remaining() < sizeof(T)) return false;
    std::memcpy(out, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool ReadString(std::string* out) {
    std::uint64_t n;
    if (!Read(&n) || n > remaining() || n > kMaxStringBytes) return false;
    out->assign(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return true;
  }

 private:
  std::span<const std::uint8_t> b_;
  std::uint64_t pos_ = 0;
};

Error Fail(const std::string& file, const std::string& what) {
  return Error{file + ": not a valid GGUF file: " + what};
}

bool ReadValue(Reader& r, std::uint32_t type, int depth, GgufValue* out, std::string* why) {
  switch (type) {
    case kU8: {
      std::uint8_t v;
      if (!r.Read(&v)) break;
      out->value = std::uint64_t{v};
      return true;
    }
    case kI8: {
      std::int8_t v;
      if (!r.Read(&v)) break;
      out->value = std::int64_t{v};
      return true;
    }
    case kU16: {
      std::uint16_t v;
      if (!r.Read(&v)) break;
      out->value = std::uint64_t{v};
      return true;
    }
    case kI16: {
      std::int16_t v;
      if (!r.Read(&v)) break;
      out->value = std::int64_t{v};
      return true;
    }
    case kU32: {
      std::uint32_t v;
      if (!r.Read(&v)) break;
      out->value = std::uint64_t{v};
      return true;
    }
    case kI32: {
      std::int32_t v;
      if (!r.Read(&v)) break;
      out->value = std::int64_t{v};
      return true;
    }
    case kU64: {
      std::uint64_t v;
      if (!r.Read(&v)) break;
      out->value = v;
      return true;
    }
    case kI64: {
      std::int64_t v;
      if (!r.Read(&v)) break;
      out->value = v;
      return true;
    }
    case kF32: {
      float v;
      if (!r.Read(&v)) break;
      out->value = double{v};
      return true;
    }
    case kF64: {
      double v;
      if (!r.Read(&v)) break;
      out->value = v;
      return true;
    }
    case kBool: {
      std::uint8_t v;
      if (!r.Read(&v)) break;
      if (v > 1) {
        *why = "boolean value " + std::to_string(v);
        return false;
      }
      out->value = v == 1;
      return true;
    }
    case kString: {
      std::string s;
      if (!r.ReadString(&s)) {
        *why = "string length past the end of the file";
        return false;
      }
      out->value = std::move(s);
      return true;
    }
    case kArray: {
      if (depth >= kMaxArrayDepth) {
        *why = "arrays nested too deeply";
        return false;
      }
      std::uint32_t elem;
      std::uint64_t n;
      if (!r.Read(&elem) || !r.Read(&n)) break;
      // Each element takes at least one byte (8 for a string's length), so a count larger
      // than what is left of the file is a lie; refuse it before allocating anything.
      const std::size_t min_bytes = elem == kString ? 8 : elem == kArray ? 12 : ScalarBytes(elem);
      if (min_bytes == 0) {
        *why = "unknown array element type " + std::to_string(elem);
        return false;
      }
      if (n > r.remaining() / min_bytes) {
        *why = "array of " + std::to_string(n) + " elements past the end of the file";
        return false;
      }
      GgufValue::Array items(n);
      for (auto& item : items) {
        if (!ReadValue(r, elem, depth + 1, &item, why)) return false;
      }
      out->value = std::move(items);
      return true;
    }
    default:
      *why = "unknown value type " + std::to_string(type);
      return false;
  }
  *why = "value past the end of the file";
  return false;
}

// A multiple of 2 MiB: Linux (6.7 on) places an anonymous mapping of such a length on a 2 MiB
// boundary, so all of it can be 2 MiB pages; elsewhere only its ends fall back to 4 KiB ones.
std::size_t HugePagesLength(std::size_t size) {
  constexpr std::size_t kHugePage = std::size_t{2} << 20;
  return (size + kHugePage - 1) / kHugePage * kHugePage;
}

// The whole file in anonymous memory that asks for 2 MiB pages (HugePagesLength long),
// read-only once filled; nullptr with errno set on failure. A mapping of the file itself gets only
// the page cache's folios, which are 4 KiB ones for a file written or read before it was mapped
// (smaps' FilePmdMapped stays 0, and MADV_COLLAPSE needs a kernel built with READ_ONLY_THP_FOR_FS).
// A decode step streams every weight once, and in 4 KiB pages that is a TLB miss every 4 KiB: with
// the copy, batch-1 decode ran ~10% faster with Q4_K and Q8_0 weights and ~40% with F16 ones
// (docs/benchmarks/engine.md, "Weights in 2 MiB pages"). Peak RSS grows only by the rounding
// (< 2 MiB): the mapped file counted in it, the page cache that pread reads from does not.
void* ReadIntoHugePages(int fd, std::size_t size) {
  const std::size_t length = HugePagesLength(size);
  void* map = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) return nullptr;
  ::madvise(map, length, MADV_HUGEPAGE);  // where THP is off, the copy is in 4 KiB pages
  auto* bytes = static_cast<std::uint8_t*>(map);
  for (std::size_t done = 0; done < size;) {
    const ssize_t got = ::pread(fd, bytes + done, size - done, static_cast<off_t>(done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      const int error = got == 0 ? EIO : errno;  // 0: the file shrank while being read
      ::munmap(map, length);
      errno = error;
      return nullptr;
    }
    done += static_cast<std::size_t>(got);
  }
  ::mprotect(map, length, PROT_READ);
  return map;
}

// MemAvailable from /proc/meminfo, in bytes; nothing where it cannot be read.
std::optional<std::uint64_t> MemAvailableBytes() {
  std::FILE* f = std::fopen("/proc/meminfo", "re");
  if (f == nullptr) return std::nullopt;
  std::optional<std::uint64_t> bytes;
  char line[256];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    unsigned long long kib = 0;
    if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
      bytes = static_cast<std::uint64_t>(kib) * 1024;
      break;
    }
  }
  std::fclose(f);
  return bytes;
}

}  // namespace

Placement PlacementFor(Placement wanted, std::uint64_t file_bytes,
                       std::optional<std::uint64_t> available_bytes) {
  if (wanted != Placement::kHugePages || !available_bytes) return wanted;
  // Room for the KV cache, the engine's buffers and everything else running: an eighth more
  // than the file and 256 MiB.
  const std::uint64_t needed = file_bytes + file_bytes / 8 + (std::uint64_t{256} << 20);
  return needed <= *available_bytes ? Placement::kHugePages : Placement::kMapped;
}

std::optional<std::int64_t> GgufValue::AsInt() const {
  if (const auto* u = std::get_if<std::uint64_t>(&value)) {
    if (*u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return std::nullopt;
    return static_cast<std::int64_t>(*u);
  }
  if (const auto* i = std::get_if<std::int64_t>(&value)) return *i;
  return std::nullopt;
}
std::optional<double> GgufValue::AsFloat() const {
  if (const auto* d = std::get_if<double>(&value)) return *d;
  if (auto i = AsInt()) return static_cast<double>(*i);
  return std::nullopt;
}
std::optional<bool> GgufValue::AsBool() const {
  if (const auto* b = std::get_if<bool>(&value)) return *b;
  return std::nullopt;
}
const std::string* GgufValue::AsString() const {
  return std::get_if<std::string>(&value);
}
const GgufValue::Array* GgufValue::AsArray() const {
  return std::get_if<Array>(&value);
}

std::uint64_t GgufTensor::Elements() const {
  std::uint64_t n = 1;
  for (auto d : dims) n *= d;  // overflow was ruled out when the file was opened
  return n;
}

bool GgufFile::Rewrite(const std::function<void(std::span<std::uint8_t>)>& edit) {
  if (placement_ != Placement::kHugePages || map_ == nullptr) return false;
  if (::mprotect(map_, map_size_, PROT_READ | PROT_WRITE) != 0) return false;
  // Read-only again however `edit` ends; if even that fails the bytes only stay writable,
  // which costs the protection against stray writes and nothing else.
  struct Protect {
    void* map;
    std::size_t size;
    ~Protect() { ::mprotect(map, size, PROT_READ); }
  } protect{map_, map_size_};
  edit({static_cast<std::uint8_t*>(map_), bytes_.size()});
  return true;
}

Result<std::unique_ptr<GgufFile>> GgufFile::Open(const std::filesystem::path& path,
                                                 Placement placement) {
  const std::string name = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{name + ": cannot open: " + std::strerror(errno)};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error{name + ": not a regular file"};
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size < 24) {
    ::close(fd);
    return Fail(name, "only " + std::to_string(size) + " bytes (truncated?)");
  }
  std::size_t map_size = size;
  void* map = nullptr;
  // /proc/meminfo is read only for a copy: metadata readers (the app's model library) map.
  if (placement == Placement::kHugePages) {
    placement = PlacementFor(placement, size, MemAvailableBytes());
  }
  if (placement == Placement::kHugePages) {
    map = ReadIntoHugePages(fd, size);
    const int error = errno;
    ::close(fd);
    if (map == nullptr) return Error{name + ": cannot read: " + std::strerror(error)};
    map_size = HugePagesLength(size);
  } else {
    map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    const int error = errno;
    ::close(fd);
    if (map == MAP_FAILED) return Error{name + ": cannot map: " + std::strerror(error)};
  }
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->name_ = name;
  file->map_ = map;
  file->map_size_ = map_size;
  file->placement_ = placement;
  file->bytes_ = {static_cast<const std::uint8_t*>(map), size};
  if (auto s = file->Parse(); !s) return Error{s.error()};
  return file;
}

Result<std::unique_ptr<GgufFile>> GgufFile::FromMemory(std::span<const std::uint8_t> bytes,
                                                       std::string name) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->name_ = std::move(name);
  file->bytes_ = bytes;
  if (auto s = file->Parse(); !s) return Error{s.error()};
  return file;
}

GgufFile::~GgufFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

Status GgufFile::Parse() {
  Reader r(bytes_);
  std::uint32_t magic = 0;
  std::uint64_t n_tensors = 0, n_kv = 0;
  if (!r.Read(&magic) || magic != kMagic) return Fail(name_, "bad magic (expected \"GGUF\")");
  if (!r.Read(&version_)) return Fail(name_, "truncated header");
  if (version_ != 2 && version_ != 3) {
    return Fail(name_, "unsupported version " + std::to_string(version_) + " (2 and 3 are)");
  }
  if (!r.Read(&n_tensors) || !r.Read(&n_kv)) return Fail(name_, "truncated header");
  // A key/value takes at least 8 (key length) + 4 (type) + 1 bytes, a tensor info at least
  // 8 + 4 + 4 + 8; counts beyond that are lies.
  if (n_kv > r.remaining() / 13)
    return Fail(name_, "metadata count " + std::to_string(n_kv) + " exceeds the file");
  if (n_tensors > r.remaining() / 24)
    return Fail(name_, "tensor count " + std::to_string(n_tensors) + " exceeds the file");

  metadata_.reserve(n_kv);
  std::unordered_set<std::string> keys;
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    std::string key, why;
    std::uint32_t type;
    if (!r.ReadString(&key) || !r.Read(&type))
      return Fail(name_, "metadata entry " + std::to_string(i) + " truncated");
    GgufValue v;
    if (!ReadValue(r, type, 0, &v, &why)) return Fail(name_, "metadata \"" + key + "\": " + why);
    if (!keys.insert(key).second) return Fail(name_, "duplicate metadata key \"" + key + "\"");
    metadata_.emplace_back(std::move(key), std::move(v));
  }

  std::uint64_t alignment = 32;
  if (const GgufValue* a = Find("general.alignment")) {
    auto v = a->AsInt();
    if (!v || *v <= 0 || (*v & (*v - 1)) != 0 || *v > 65536)
      return Fail(name_, "general.alignment must be a power of two");
    alignment = static_cast<std::uint64_t>(*v);
  }

  struct Info {
    std::uint64_t offset;
  };
  std::vector<Info> infos;
  tensors_.reserve(n_tensors);
  infos.reserve(n_tensors);
  std::unordered_set<std::string> names;
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    std::uint32_t n_dims, type_id;
    if (!r.ReadString(&t.name) || !r.Read(&n_dims))
      return Fail(name_, "tensor info " + std::to_string(i) + " truncated");
    const std::string what = "tensor \"" + t.name + "\": ";
    if (n_dims == 0 || n_dims > kMaxDims)
      return Fail(name_, what + std::to_string(n_dims) + " dimensions");
    t.dims.resize(n_dims);
    std::uint64_t elements = 1;
    for (auto& d : t.dims) {
      if (!r.Read(&d)) return Fail(name_, what + "truncated");
      if (d == 0 || d > (std::uint64_t{1} << 40))
        return Fail(name_, what + "dimension " + std::to_string(d));
      if (elements > std::numeric_limits<std::uint64_t>::max() / d)
        return Fail(name_, what + "size overflows");
      elements *= d;
    }
    Info info{};
    if (!r.Read(&type_id) || !r.Read(&info.offset)) return Fail(name_, what + "truncated");
    auto type = TensorTypeFromId(type_id);
    if (!type) return Fail(name_, what + "unsupported tensor type " + std::to_string(type_id));
    t.type = *type;
    if (t.dims[0] % BlockElements(t.type) != 0) {
      return Fail(name_, what + "row of " + std::to_string(t.dims[0]) +
                             " is not a whole number of " + std::string(TensorTypeName(t.type)) +
                             " blocks");
    }
    if (elements > bytes_.size() * 8) return Fail(name_, what + "larger than the file");
    t.bytes = elements / BlockElements(t.type) * BlockBytes(t.type);
    if (info.offset % alignment != 0) return Fail(name_, what + "misaligned data offset");
    if (!names.insert(t.name).second) return Fail(name_, "duplicate tensor \"" + t.name + "\"");
    tensors_.push_back(std::move(t));
    infos.push_back(info);
  }

  const std::uint64_t data_start = (r.pos() + alignment - 1) / alignment * alignment;
  if (data_start > bytes_.size() && n_tensors > 0)
    return Fail(name_, "tensor data missing (truncated)");
  // Tensors must lie inside the file and must not overlap: sort by offset and check neighbours.
  std::vector<std::size_t> order(tensors_.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](auto a, auto b) { return infos[a].offset < infos[b].offset; });
  std::uint64_t end_of_previous = 0;
  for (std::size_t k : order) {
    GgufTensor& t = tensors_[k];
    const std::uint64_t off = infos[k].offset;
    if (off > bytes_.size() - std::min<std::uint64_t>(bytes_.size(), data_start) ||
        t.bytes > bytes_.size() - data_start - off) {
      return Fail(name_,
                  "tensor \"" + t.name + "\" data lies past the end of the file (truncated?)");
    }
    if (off < end_of_previous) return Fail(name_, "tensor \"" + t.name + "\" overlaps another");
    end_of_previous = off + t.bytes;
    t.data = bytes_.data() + data_start + off;
  }
  return Ok{};
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  for (const auto& [k, v] : metadata_) {
    if (k == key) return &v;
  }
  return nullptr;
}
std::optional<std::int64_t> GgufFile::GetInt(std::string_view key) const {
  const GgufValue* v = Find(key);
  return v ? v->AsInt() : std::nullopt;
}
std::optional<double> GgufFile::GetFloat(std::string_view key) const {
  const GgufValue* v = Find(key);
  return v ? v->AsFloat() : std::nullopt;
}
std::optional<bool> GgufFile::GetBool(std::string_view key) const {
  const GgufValue* v = Find(key);
  return v ? v->AsBool() : std::nullopt;
}
std::optional<std::string> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  const std::string* s = v ? v->AsString() : nullptr;
  return s ? std::optional<std::string>(*s) : std::nullopt;
}

const GgufTensor* GgufFile::FindTensor(std::string_view name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace tidelane::engine
