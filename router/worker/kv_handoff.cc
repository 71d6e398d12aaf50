#include "router/worker/kv_handoff.h"

#include <cstring>

#include "router/receipt/receipt.h"

namespace tidelane::worker {
namespace {

constexpr char kMagic[4] = {'T', 'L', 'H', 'O'};
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kDigestChars = 64;  // SHA-256, hex
constexpr std::size_t kMaxField = 4096;   // no header string is longer

template <typename T>
void Put(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out.append(bytes, sizeof(T));
}

void PutString(std::string& out, std::string_view s) {
  Put(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

// Reads fields in order; any read past the end marks the blob truncated.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  template <typename T>
  T Get() {
    T v{};
    if (!Need(sizeof(T))) return v;
    std::memcpy(&v, s_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  std::string GetString() {
    const auto n = Get<std::uint32_t>();
    if (n > kMaxField || !Need(n)) {
      ok_ = false;
      return {};
    }
    std::string v(s_.substr(at_, n));
    at_ += n;
    return v;
  }
  std::string_view GetBytes(std::uint64_t n) {
    if (!Need(n)) return {};
    const auto v = s_.substr(at_, n);
    at_ += n;
    return v;
  }
  bool ok() const { return ok_; }
  std::size_t at() const { return at_; }

 private:
  bool Need(std::uint64_t n) {
    if (!ok_ || n > s_.size() - at_) ok_ = false;
    return ok_;
  }
  std::string_view s_;
  std::size_t at_ = 0;
  bool ok_ = true;
};

[[noreturn]] void Corrupt(const std::string& why) {
  throw KvHandoffError(KvHandoffError::Kind::kCorrupt, "the KV handoff is unusable: " + why);
}

[[noreturn]] void Foreign(const std::string& why) {
  throw KvHandoffError(KvHandoffError::Kind::kForeign,
                       "the KV handoff does not belong here: " + why);
}

}  // namespace

std::string PackHandoff(const HandoffHeader& h, std::span<const std::uint8_t> kv) {
  std::string out;
  out.reserve(64 + h.engine.size() + h.model.size() + h.request_id.size() + h.prompt_sha256.size() +
              kv.size() + kDigestChars);
  out.append(kMagic, sizeof kMagic);
  Put(out, kVersion);
  PutString(out, h.engine);
  PutString(out, h.model);
  PutString(out, h.request_id);
  PutString(out, h.prompt_sha256);
  Put(out, h.prompt_prefix);
  Put(out, h.resume_index);
  Put(out, h.next_token);
  Put(out, h.sampler_draws);
  Put(out, static_cast<std::uint64_t>(kv.size()));
  out.append(reinterpret_cast<const char*>(kv.data()), kv.size());
  out += receipt::Sha256Hex(out);
  return out;
}

UnpackedHandoff UnpackHandoff(std::string_view blob) {
  if (blob.size() < sizeof kMagic + 4 + kDigestChars ||
      std::memcmp(blob.data(), kMagic, sizeof kMagic) != 0) {
    Corrupt("it is not a Tidelane KV handoff");
  }
  const auto body = blob.substr(0, blob.size() - kDigestChars);
  if (receipt::Sha256Hex(body) != blob.substr(body.size())) {
    Corrupt("its checksum does not match (damaged in transit?)");
  }
  Reader r(body.substr(sizeof kMagic));
  if (const auto v = r.Get<std::uint32_t>(); v != kVersion) {
    Corrupt("version " + std::to_string(v) + " is not supported");
  }
  UnpackedHandoff u;
  u.header.engine = r.GetString();
  u.header.model = r.GetString();
  u.header.request_id = r.GetString();
  u.header.prompt_sha256 = r.GetString();
  u.header.prompt_prefix = r.Get<std::uint32_t>();
  u.header.resume_index = r.Get<std::uint32_t>();
  u.header.next_token = r.Get<std::int32_t>();
  u.header.sampler_draws = r.Get<std::uint64_t>();
  const auto kv = r.GetBytes(r.Get<std::uint64_t>());
  if (!r.ok() || sizeof kMagic + r.at() != body.size()) Corrupt("it is truncated or malformed");
  u.kv = {reinterpret_cast<const std::uint8_t*>(kv.data()), kv.size()};
  return u;
}

void CheckHandoff(const HandoffHeader& h, std::string_view engine, std::string_view model,
                  const GenerationInput& input) {
  if (h.engine != engine || h.model != model) {
    Foreign("it comes from a " + h.engine + " engine serving " + h.model + ", this worker runs " +
            std::string(engine) + " serving " + std::string(model));
  }
  if (h.request_id != input.request_id) {
    Foreign("it is the KV cache of request " + h.request_id + ", not of " + input.request_id);
  }
  if (h.resume_index != input.generated.size() || h.prompt_prefix >= h.resume_index) {
    Foreign("decoding would continue at token " + std::to_string(input.generated.size()) +
            " but the prefill stopped at " + std::to_string(h.resume_index));
  }
}

}  // namespace tidelane::worker
