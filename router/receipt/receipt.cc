#include "router/receipt/receipt.h"

#include <sodium.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <mutex>
#include <span>

namespace tidelane::receipt {
namespace {

using nlohmann::json;

const json& Field(const json& j, const char* key, const char* where) {
  if (!j.is_object()) throw ReceiptFormatError(std::string(where) + " is not an object");
  const auto it = j.find(key);
  if (it == j.end()) throw ReceiptFormatError(std::string(where) + "." + key + " is missing");
  return *it;
}

std::string Str(const json& j, const char* key, const char* where) {
  const json& v = Field(j, key, where);
  if (!v.is_string()) throw ReceiptFormatError(std::string(where) + "." + key + " is not a string");
  return v.get<std::string>();
}

std::uint64_t U64(const json& j, const char* key, const char* where) {
  const json& v = Field(j, key, where);
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
    throw ReceiptFormatError(std::string(where) + "." + key + " is not a non-negative integer");
  }
  return v.get<std::uint64_t>();
}

std::int64_t I64(const json& j, const char* key, const char* where) {
  const json& v = Field(j, key, where);
  if (!v.is_number_integer()) {
    throw ReceiptFormatError(std::string(where) + "." + key + " is not an integer");
  }
  return v.get<std::int64_t>();
}

std::string Hash(const json& j, const char* key, const char* where) {
  std::string h = Str(j, key, where);
  if (h.size() != 64 || !FromHex(h)) {
    throw ReceiptFormatError(std::string(where) + "." + key + " is not a SHA-256 in hex");
  }
  return h;
}

// A public key in hex: 64 hex digits (32 bytes).
std::optional<std::string> KeyBytes(std::string_view hex) {
  auto bytes = FromHex(hex);
  if (!bytes || bytes->size() != crypto_sign_PUBLICKEYBYTES) return std::nullopt;
  return bytes;
}

bool VerifySignature(std::string_view message, std::string_view signature,
                     std::string_view public_key_hex) {
  const auto key = KeyBytes(public_key_hex);
  if (!key || signature.size() != crypto_sign_BYTES) return false;
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature.data()),
                                     reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size(),
                                     reinterpret_cast<const unsigned char*>(key->data())) == 0;
}

// The payload as the router builds it; also the schema Verify checks.
json RouterPayload(const RouterStatement& r, const json& worker_statement) {
  json route = json::array();
  for (const auto& hop : r.route) {
    json h{{"node", hop.node},
           {"from_index", hop.from_index},
           {"to_index", hop.to_index},
           {"outcome", hop.outcome}};
    if (!hop.reason.empty()) h["reason"] = hop.reason;
    route.push_back(std::move(h));
  }
  return json{
      {"type", kReceiptType},
      {"request_id", r.request_id},
      {"prompt", {{"messages_sha256", r.prompt_messages_sha256}, {"tokens", r.prompt_tokens}}},
      {"output",
       {{"tokens", r.output_tokens},
        {"sha256", r.output_sha256},
        {"text_sha256", r.output_text_sha256}}},
      {"finish_reason", r.finish_reason},
      {"route", std::move(route)},
      {"router", {{"public_key", r.router_public_key}}},
      {"accepted_at_ms", r.accepted_at_ms},
      {"done_at_ms", r.done_at_ms},
      {"worker_statement", worker_statement},
  };
}

RouterStatement RouterFromJson(const json& p) {
  RouterStatement r;
  if (Str(p, "type", "payload") != kReceiptType) {
    throw ReceiptFormatError("payload.type is not " + std::string(kReceiptType));
  }
  r.request_id = Str(p, "request_id", "payload");
  const json& prompt = Field(p, "prompt", "payload");
  r.prompt_messages_sha256 = Hash(prompt, "messages_sha256", "payload.prompt");
  r.prompt_tokens = U64(prompt, "tokens", "payload.prompt");
  const json& output = Field(p, "output", "payload");
  r.output_tokens = U64(output, "tokens", "payload.output");
  r.output_sha256 = Hash(output, "sha256", "payload.output");
  r.output_text_sha256 = Hash(output, "text_sha256", "payload.output");
  r.finish_reason = Str(p, "finish_reason", "payload");
  const json& route = Field(p, "route", "payload");
  if (!route.is_array()) throw ReceiptFormatError("payload.route is not an array");
  for (const auto& h : route) {
    RouteHop hop;
    hop.node = Str(h, "node", "payload.route[]");
    hop.from_index = U64(h, "from_index", "payload.route[]");
    hop.to_index = U64(h, "to_index", "payload.route[]");
    hop.outcome = Str(h, "outcome", "payload.route[]");
    if (h.contains("reason")) hop.reason = Str(h, "reason", "payload.route[]");
    r.route.push_back(std::move(hop));
  }
  r.router_public_key = Str(Field(p, "router", "payload"), "public_key", "payload.router");
  r.accepted_at_ms = I64(p, "accepted_at_ms", "payload");
  r.done_at_ms = I64(p, "done_at_ms", "payload");
  return r;
}

// Why the two statements disagree with each other, or "" when they agree.
std::string Inconsistency(const RouterStatement& r, const WorkerStatement& w) {
  if (w.request_id != r.request_id) return "the worker statement is for another request";
  if (r.route.empty()) return "the route is empty";
  std::uint64_t next = 0;
  for (std::size_t i = 0; i < r.route.size(); ++i) {
    const auto& hop = r.route[i];
    const bool last = i + 1 == r.route.size();
    if (hop.from_index != next || hop.to_index < hop.from_index) {
      return "the route's token ranges are not contiguous from 0 (hop " + std::to_string(i + 1) +
             ")";
    }
    // Before the last hop, a node either failed or handed its KV cache on (prefill/decode
    // split); the last one finished the answer.
    if (last ? hop.outcome != "done" : hop.outcome != "failed" && hop.outcome != "handoff") {
      return "hop " + std::to_string(i + 1) + " has outcome '" + hop.outcome + "'";
    }
    next = hop.to_index;
  }
  const auto& last = r.route.back();
  if (last.to_index != r.output_tokens) return "the route does not cover every output token";
  if (last.node != w.worker_name) return "the last hop is not the worker that signed";
  if (last.from_index != w.resumed_from_index || w.output_to_index != r.output_tokens) {
    return "the worker's token range differs from the route's last hop";
  }
  if (w.finish_reason != r.finish_reason) return "the finish reasons differ";
  if (r.done_at_ms < r.accepted_at_ms || w.finished_at_ms < w.started_at_ms) {
    return "a statement ends before it starts";
  }
  return {};
}

}  // namespace

void EnsureSodium() {
  static std::once_flag once;
  static int result = 0;
  std::call_once(once, [] { result = sodium_init(); });
  if (result < 0) throw std::runtime_error("libsodium failed to initialise");
}

std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::optional<std::string> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;  // uppercase is refused: one spelling per value keeps payloads canonical
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

std::string Sha256Hex(std::string_view bytes) {
  EnsureSodium();
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return ToHex({reinterpret_cast<const char*>(digest), sizeof digest});
}

std::string Sha256File(const std::filesystem::path& path) {
  EnsureSodium();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string() + " to hash it");
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto n = in.gcount();
    if (n > 0) {
      crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(buffer.data()),
                                static_cast<unsigned long long>(n));
    }
  }
  if (in.bad()) throw std::runtime_error("error reading " + path.string() + " to hash it");
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&state, digest);
  return ToHex({reinterpret_cast<const char*>(digest), sizeof digest});
}

namespace {

// Netstrings hashed piece by piece: a long chat's history is not joined into a copy first.
template <typename Strings>
std::string NetstringsSha256(const Strings& strings) {
  EnsureSodium();
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  for (const auto& s : strings) {
    const std::string length = std::to_string(s.size()) + ':';
    crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(length.data()),
                              length.size());
    crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(s.data()), s.size());
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&state, digest);
  return ToHex({reinterpret_cast<const char*>(digest), sizeof digest});
}

// SHA-256 of the strings joined, without joining them.
std::string ConcatenationSha256(std::span<const std::string> strings) {
  EnsureSodium();
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  for (const auto& s : strings) {
    crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(s.data()), s.size());
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&state, digest);
  return ToHex({reinterpret_cast<const char*>(digest), sizeof digest});
}

}  // namespace

std::string Sha256Strings(const std::vector<std::string>& strings) {
  return NetstringsSha256(strings);
}

std::string Sha256StringViews(const std::vector<std::string_view>& strings) {
  return NetstringsSha256(strings);
}

std::string Sha256TokenIds(const std::vector<std::int32_t>& ids) {
  return Sha256Hex(json(ids).dump());
}

std::string Canonical(const json& value) {
  // Floats are refused anywhere in the tree: 0.1 has many spellings, a signature needs one.
  std::vector<const json*> stack{&value};
  while (!stack.empty()) {
    const json* v = stack.back();
    stack.pop_back();
    if (v->is_number_float()) throw ReceiptFormatError("receipts hold no floating-point numbers");
    if (v->is_structured()) {
      for (const auto& child : *v) stack.push_back(&child);
    }
  }
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---- statements ---------------------------------------------------------------------------

json WorkerStatement::ToJson() const {
  return json{
      {"type", kWorkerStatementType},
      {"request_id", request_id},
      {"worker", {{"name", worker_name}, {"public_key", worker_public_key}}},
      {"model", {{"kind", model_kind}, {"id", model_id}, {"sha256", model_sha256}}},
      {"prompt",
       {{"encoding", prompt_encoding}, {"tokens", prompt_tokens}, {"sha256", prompt_sha256}}},
      {"resumed_from", {{"index", resumed_from_index}, {"prefix_sha256", resumed_prefix_sha256}}},
      {"output", {{"to_index", output_to_index}, {"sha256", output_sha256}}},
      {"finish_reason", finish_reason},
      {"started_at_ms", started_at_ms},
      {"finished_at_ms", finished_at_ms},
  };
}

WorkerStatement WorkerStatement::FromJson(const json& j) {
  constexpr const char* w = "worker_statement";
  WorkerStatement s;
  if (Str(j, "type", w) != kWorkerStatementType) {
    throw ReceiptFormatError("worker_statement.type is not " + std::string(kWorkerStatementType));
  }
  s.request_id = Str(j, "request_id", w);
  const json& worker = Field(j, "worker", w);
  s.worker_name = Str(worker, "name", "worker_statement.worker");
  s.worker_public_key = Str(worker, "public_key", "worker_statement.worker");
  const json& model = Field(j, "model", w);
  s.model_kind = Str(model, "kind", "worker_statement.model");
  s.model_id = Str(model, "id", "worker_statement.model");
  s.model_sha256 = Hash(model, "sha256", "worker_statement.model");
  const json& prompt = Field(j, "prompt", w);
  s.prompt_encoding = Str(prompt, "encoding", "worker_statement.prompt");
  s.prompt_tokens = U64(prompt, "tokens", "worker_statement.prompt");
  s.prompt_sha256 = Hash(prompt, "sha256", "worker_statement.prompt");
  const json& resumed = Field(j, "resumed_from", w);
  s.resumed_from_index = U64(resumed, "index", "worker_statement.resumed_from");
  s.resumed_prefix_sha256 = Hash(resumed, "prefix_sha256", "worker_statement.resumed_from");
  const json& output = Field(j, "output", w);
  s.output_to_index = U64(output, "to_index", "worker_statement.output");
  s.output_sha256 = Hash(output, "sha256", "worker_statement.output");
  s.finish_reason = Str(j, "finish_reason", w);
  s.started_at_ms = I64(j, "started_at_ms", w);
  s.finished_at_ms = I64(j, "finished_at_ms", w);
  return s;
}

SignedStatement SignWorkerStatement(WorkerStatement statement, const Identity& worker) {
  statement.worker_public_key = worker.PublicKeyHex();
  SignedStatement out;
  out.statement = Canonical(statement.ToJson());
  out.signature = worker.Sign(out.statement);
  out.public_key = statement.worker_public_key;
  return out;
}

namespace {
Verification CheckPayload(const Envelope& envelope, nlohmann::json payload, const Pins& pins,
                          const std::optional<std::string_view>& answer_text,
                          bool check_signatures);
}  // namespace

std::optional<Envelope> Countersign(const RouterStatement& request, const SignedStatement& worker,
                                    const std::vector<std::string>& output_tokens,
                                    const Identity& router, std::string* problem) {
  EnsureSodium();
  json statement_json;
  WorkerStatement statement;
  try {
    statement_json = json::parse(worker.statement);
    statement = WorkerStatement::FromJson(statement_json);
  } catch (const std::exception& e) {
    *problem = std::string("the worker's statement is malformed: ") + e.what();
    return std::nullopt;
  }
  if (Canonical(statement_json) != worker.statement) {
    *problem = "the worker's statement is not canonical JSON";
    return std::nullopt;
  }
  if (statement.worker_public_key != worker.public_key ||
      !VerifySignature(worker.statement, worker.signature, worker.public_key)) {
    *problem = "the worker's signature does not verify";
    return std::nullopt;
  }
  // Countersigning means vouching: the worker must have signed exactly the tokens the router
  // forwarded, after exactly the prefix the router gave it.
  const auto from = statement.resumed_from_index;
  const auto to = statement.output_to_index;
  if (from > to || to != output_tokens.size()) {
    *problem = "the worker's token range [" + std::to_string(from) + ", " + std::to_string(to) +
               ") is not the end of the " + std::to_string(output_tokens.size()) +
               " tokens the router sent";
    return std::nullopt;
  }
  // Hashed in place, on this answer's critical path: no copies of the tokens, and an answer
  // that one worker gave whole (from == 0) is hashed once for both statements.
  const std::span<const std::string> tokens(output_tokens);
  const std::string produced_sha256 = NetstringsSha256(tokens.subspan(from));
  if (NetstringsSha256(tokens.first(from)) != statement.resumed_prefix_sha256 ||
      produced_sha256 != statement.output_sha256) {
    *problem = "the worker signed other tokens than the router forwarded";
    return std::nullopt;
  }
  RouterStatement r = request;
  r.router_public_key = router.PublicKeyHex();
  r.output_tokens = output_tokens.size();
  r.output_sha256 = from == 0 ? produced_sha256 : NetstringsSha256(tokens);
  r.output_text_sha256 = ConcatenationSha256(tokens);
  if (const auto why = Inconsistency(r, statement); !why.empty()) {
    *problem = why;
    return std::nullopt;
  }
  Envelope e;
  json payload = RouterPayload(r, statement_json);
  e.payload = Canonical(payload);
  e.worker_signature = worker.signature;
  e.worker_public_key = worker.public_key;
  e.router_signature = router.Sign(e.payload);
  e.router_public_key = r.router_public_key;
  // The router never hands out a receipt that a verifier would reject (a field the router
  // filled badly, say): it checks its own work the way everyone else will, on the value it
  // has just written out (parsing those bytes back gives that value: no floating point).
  if (const auto v = CheckPayload(e, std::move(payload), {}, std::nullopt,
                                  /*check_signatures=*/false);
      !v.ok()) {
    *problem =
        "the receipt would not verify (" + std::string(CheckName(v.failed)) + "): " + v.message;
    return std::nullopt;
  }
  return e;
}

// ---- verification -------------------------------------------------------------------------

std::string_view CheckName(Check check) {
  switch (check) {
    case Check::kOk:
      return "ok";
    case Check::kMalformed:
      return "malformed";
    case Check::kNotCanonical:
      return "not-canonical";
    case Check::kWorkerKey:
      return "worker-key";
    case Check::kRouterKey:
      return "router-key";
    case Check::kWorkerSignature:
      return "worker-signature";
    case Check::kRouterSignature:
      return "router-signature";
    case Check::kInconsistent:
      return "inconsistent";
    case Check::kAnswerMismatch:
      return "answer-mismatch";
  }
  return "?";
}

namespace {

// Everything Verify checks once the payload bytes have parsed to `payload` and are canonical,
// with or without the two Ed25519 checks. Countersign's self-check leaves those out, and runs
// on the value it canonicalised rather than parsing its own bytes back: it has just verified
// the worker's signature over these very statement bytes, and made the router's with a key
// pair derived from one seed (identity.cc), so what it can still get wrong is what it filled
// in. The two verifications were ~100 us of the ~250 us countersigning added to the end of
// every answer, the parse and re-canonicalisation ~15 us more (docs/benchmarks/serving.md).
Verification CheckPayload(const Envelope& envelope, json payload, const Pins& pins,
                          const std::optional<std::string_view>& answer_text,
                          bool check_signatures) {
  Verification v;
  v.payload = std::move(payload);
  const auto fail = [&](Check check, std::string message) {
    v.failed = check;
    v.message = std::move(message);
    return v;
  };
  RouterStatement r;
  WorkerStatement w;
  std::string statement_bytes;
  try {
    r = RouterFromJson(v.payload);
    const json& statement = Field(v.payload, "worker_statement", "payload");
    w = WorkerStatement::FromJson(statement);
    if (check_signatures) statement_bytes = Canonical(statement);
  } catch (const std::exception& e) {
    return fail(Check::kMalformed, e.what());
  }
  // Keys first: a signature that verifies under a key nobody vouches for proves nothing.
  if (!KeyBytes(envelope.worker_public_key) || envelope.worker_public_key != w.worker_public_key) {
    return fail(Check::kWorkerKey,
                "the worker public key does not match the one in the signed statement");
  }
  if (!pins.worker_public_key.empty() && pins.worker_public_key != envelope.worker_public_key) {
    return fail(Check::kWorkerKey,
                "the worker key is not the expected one (" + pins.worker_public_key + ")");
  }
  if (!KeyBytes(envelope.router_public_key) || envelope.router_public_key != r.router_public_key) {
    return fail(Check::kRouterKey,
                "the router public key does not match the one in the signed payload");
  }
  if (!pins.router_public_key.empty() && pins.router_public_key != envelope.router_public_key) {
    return fail(Check::kRouterKey,
                "the router key is not the expected one (" + pins.router_public_key + ")");
  }
  if (check_signatures &&
      !VerifySignature(statement_bytes, envelope.worker_signature, envelope.worker_public_key)) {
    return fail(Check::kWorkerSignature,
                "the worker's signature does not match its statement (altered or forged)");
  }
  if (check_signatures &&
      !VerifySignature(envelope.payload, envelope.router_signature, envelope.router_public_key)) {
    return fail(Check::kRouterSignature,
                "the router's countersignature does not match the payload (altered or forged)");
  }
  if (const auto why = Inconsistency(r, w); !why.empty()) return fail(Check::kInconsistent, why);
  if (answer_text && Sha256Hex(*answer_text) != r.output_text_sha256) {
    return fail(Check::kAnswerMismatch, "the answer shown is not the answer that was signed");
  }
  v.failed = Check::kOk;
  v.message.clear();
  return v;
}

}  // namespace

Verification Verify(const Envelope& envelope, const Pins& pins,
                    const std::optional<std::string_view>& answer_text) {
  EnsureSodium();
  Verification v;
  try {
    v.payload = json::parse(envelope.payload);
  } catch (const std::exception& e) {
    v.payload = nullptr;
    v.failed = Check::kMalformed;
    v.message = std::string("the payload is not JSON: ") + e.what();
    return v;
  }
  // Only bytes that are their own canonical form: the readable object and the signed bytes
  // can never disagree.
  try {
    if (Canonical(v.payload) != envelope.payload) {
      v.failed = Check::kNotCanonical;
      v.message = "the payload is not in canonical form";
      return v;
    }
  } catch (const std::exception& e) {  // a float somewhere: no canonical form at all
    v.failed = Check::kMalformed;
    v.message = e.what();
    return v;
  }
  return CheckPayload(envelope, std::move(v.payload), pins, answer_text,
                      /*check_signatures=*/true);
}

// ---- documents ----------------------------------------------------------------------------

std::string ToJsonDocument(const Envelope& e, int indent) {
  json payload;
  try {
    payload = json::parse(e.payload);
  } catch (const std::exception& ex) {
    throw ReceiptFormatError(std::string("the receipt payload is not JSON: ") + ex.what());
  }
  json doc{
      {"object", "tidelane.receipt"},
      {"id",
       payload.is_object() && payload.contains("request_id") && payload["request_id"].is_string()
           ? payload["request_id"].get<std::string>()
           : ""},
      {"payload", std::move(payload)},
      {"worker_signature", ToHex(e.worker_signature)},
      {"worker_public_key", e.worker_public_key},
      {"router_signature", ToHex(e.router_signature)},
      {"router_public_key", e.router_public_key},
  };
  return doc.dump(indent, ' ', false, json::error_handler_t::replace);
}

Envelope FromJsonDocument(std::string_view text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const std::exception& e) {
    throw ReceiptFormatError(std::string("not JSON: ") + e.what());
  }
  // Compared as JSON, not read as a string: "object" may hold anything in a stranger's file.
  if (!doc.is_object() || !doc.contains("object") || doc["object"] != "tidelane.receipt") {
    throw ReceiptFormatError("not a Tidelane receipt (\"object\" is not \"tidelane.receipt\")");
  }
  Envelope e;
  const json& payload = Field(doc, "payload", "receipt");
  if (!payload.is_object()) throw ReceiptFormatError("receipt.payload is not an object");
  try {
    e.payload = Canonical(payload);
  } catch (const ReceiptFormatError& ex) {
    throw ReceiptFormatError(std::string("receipt.payload: ") + ex.what());
  }
  const auto signature = [&](const char* key) {
    auto bytes = FromHex(Str(doc, key, "receipt"));
    if (!bytes) throw ReceiptFormatError(std::string("receipt.") + key + " is not hex");
    return *bytes;
  };
  e.worker_signature = signature("worker_signature");
  e.router_signature = signature("router_signature");
  e.worker_public_key = Str(doc, "worker_public_key", "receipt");
  e.router_public_key = Str(doc, "router_public_key", "receipt");
  return e;
}

std::vector<std::pair<std::string, std::string>> DescribePayload(const json& p) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!p.is_object()) return out;
  // Dotted paths in a fixed, readable order; whatever a field holds is shown as it is.
  const auto add = [&](const std::string& label, const json::json_pointer& at) {
    if (!p.contains(at)) return;
    const json& v = p.at(at);
    out.emplace_back(label, v.is_string() ? v.get<std::string>() : v.dump());
  };
  // Times as a person reads them (UTC), with the signed number beside them.
  const auto time = [&](const std::string& label, const json::json_pointer& at) {
    if (!p.contains(at) || !p.at(at).is_number_integer()) return add(label, at);
    const std::int64_t ms = p.at(at).get<std::int64_t>();
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm utc{};
    char text[64];
    if (ms < 0 || !::gmtime_r(&seconds, &utc) ||
        std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &utc) == 0) {
      return add(label, at);
    }
    char millis[32];
    std::snprintf(millis, sizeof millis, ".%03d UTC (%lld)", static_cast<int>(ms % 1000),
                  static_cast<long long>(ms));
    out.emplace_back(label, std::string(text) + millis);
  };
  using ptr = json::json_pointer;
  add("request id", ptr("/request_id"));
  add("model", ptr("/worker_statement/model/id"));
  add("model kind", ptr("/worker_statement/model/kind"));
  add("model sha256", ptr("/worker_statement/model/sha256"));
  add("worker", ptr("/worker_statement/worker/name"));
  add("worker public key", ptr("/worker_statement/worker/public_key"));
  add("router public key", ptr("/router/public_key"));
  add("prompt messages sha256", ptr("/prompt/messages_sha256"));
  add("prompt tokens", ptr("/prompt/tokens"));
  add("prompt encoding (worker)", ptr("/worker_statement/prompt/encoding"));
  add("prompt sha256 (worker)", ptr("/worker_statement/prompt/sha256"));
  add("output tokens", ptr("/output/tokens"));
  add("output tokens sha256", ptr("/output/sha256"));
  add("answer text sha256", ptr("/output/text_sha256"));
  add("finish reason", ptr("/finish_reason"));
  time("accepted at", ptr("/accepted_at_ms"));
  time("done at", ptr("/done_at_ms"));
  time("worker started at", ptr("/worker_statement/started_at_ms"));
  time("worker finished at", ptr("/worker_statement/finished_at_ms"));
  if (p.contains("route") && p["route"].is_array()) {
    int i = 0;
    for (const auto& hop : p["route"]) {
      ++i;
      if (!hop.is_object()) continue;
      const auto text = [&](const char* key) {
        if (!hop.contains(key)) return std::string("?");
        return hop[key].is_string() ? hop[key].get<std::string>() : hop[key].dump();
      };
      std::string line = text("node") + " tokens [" + text("from_index") + ", " + text("to_index") +
                         ") " + text("outcome");
      if (hop.contains("reason")) line += ": " + text("reason");
      out.emplace_back("route " + std::to_string(i), line);
    }
  }
  return out;
}

}  // namespace tidelane::receipt
