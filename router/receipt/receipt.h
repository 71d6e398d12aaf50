// Verifiable receipts: who computed an answer, on which model, from which prompt, and which
// nodes produced which tokens, signed with Ed25519 (libsodium) by the worker that finished
// the answer and countersigned by the router. See README.md for the format and the why.
//
// The receipt is two nested statements in one canonical JSON payload:
//   - the worker statement (payload.worker_statement), signed by the worker: what this one
//     worker computed (model hash, prompt hash, the output range it produced and its hash,
//     its timestamps). A worker that failed mid-answer never finished, so it signs nothing;
//   - the whole payload, signed by the router: the request as the client sent it, every
//     output token, the route (each node with the token index range it produced) and the
//     worker statement itself, so the router vouches for the route across failovers.
//
// Canonical form: nlohmann::json::dump() of a value holding no floating-point numbers:
// object keys sorted bytewise, no whitespace, strings as UTF-8 with only '"', '\\' and
// control characters escaped (lowercase \u00XX). For our ASCII keys and integer numbers this
// is RFC 8785 (JCS). A payload is accepted only if re-canonicalising it gives the same bytes,
// so the bytes and the readable object can never disagree.
//
// Errors: functions that read untrusted input return results (Verify) or throw
// ReceiptFormatError (parsing); identity functions throw IdentityError with a message that
// names the file and says what to do. Nothing here logs.
// Threading: every function is thread-safe; an Identity is immutable after load and may be
// shared between threads. Every function initialises libsodium itself (EnsureSodium).
// Ownership: everything is plain values; no function keeps a reference to its arguments.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <istream>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tidelane::receipt {

inline constexpr std::string_view kWorkerStatementType = "tidelane.worker-statement/1";
inline constexpr std::string_view kReceiptType = "tidelane.receipt/1";
inline constexpr std::string_view kIdentityHeader = "tidelane-ed25519-seed-v1";

class IdentityError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ReceiptFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Initialises libsodium once; throws std::runtime_error if it cannot.
void EnsureSodium();

// ---- hashing ------------------------------------------------------------------------------

// Lowercase hex of `bytes`; FromHex returns nothing for odd length or non-hex characters.
std::string ToHex(std::string_view bytes);
std::optional<std::string> FromHex(std::string_view hex);

// SHA-256 of `bytes`, lowercase hex.
std::string Sha256Hex(std::string_view bytes);
// SHA-256 of a file's contents, lowercase hex, streaming (a model of many GB is fine).
// Throws std::runtime_error naming the file when it cannot be read.
std::string Sha256File(const std::filesystem::path& path);
// SHA-256 of a sequence of strings (token texts, or role/content pairs), each written as a
// netstring "<byte length>:<bytes>" one after another. Why netstrings: token texts may be any
// bytes (a token can end mid-character), and anyone can recompute this in a line of Python:
// sha256(b"".join(b"%d:%s" % (len(t), t) for t in tokens)).
std::string Sha256Strings(const std::vector<std::string>& strings);
// The same hash of strings held elsewhere (a request's messages), without copying them.
std::string Sha256StringViews(const std::vector<std::string_view>& strings);
// SHA-256 of token ids as the canonical JSON array "[1,2,3]".
std::string Sha256TokenIds(const std::vector<std::int32_t>& ids);

// ---- canonical JSON -----------------------------------------------------------------------

// The canonical bytes of `value`. Throws ReceiptFormatError if it holds a floating-point
// number (floats have no single canonical text). Invalid UTF-8 in strings becomes U+FFFD.
std::string Canonical(const nlohmann::json& value);

// ---- identities ---------------------------------------------------------------------------

// An Ed25519 secret key (libsodium layout: seed then public key) in a memory page of its own:
// kept out of core dumps and, where RLIMIT_MEMLOCK allows, locked out of swap (locked() says
// whether it is; a failure to lock is not an error, callers may log it). Wiped (sodium_memzero)
// before the page goes back, so no key outlives the objects that hold it. A copy gets a page of
// its own; a move hands the page over and leaves the source empty (no key bytes at all).
// Not thread-safe to modify; const use from many threads is fine.
class SecretKey {
 public:
  static constexpr std::size_t kSize = 64;

  SecretKey();  // all zeros; throws std::bad_alloc when no page can be mapped
  ~SecretKey();
  SecretKey(const SecretKey& other);
  SecretKey& operator=(const SecretKey& other);
  SecretKey(SecretKey&& other) noexcept;
  SecretKey& operator=(SecretKey&& other) noexcept;

  // kSize bytes; null when empty().
  unsigned char* data() { return bytes_; }
  const unsigned char* data() const { return bytes_; }
  static constexpr std::size_t size() { return kSize; }
  // True after being moved from: the key went with the move.
  bool empty() const { return bytes_ == nullptr; }
  bool locked() const { return locked_; }
  // Overwrites the key with zeros now (the destructor does it too).
  void Wipe();

 private:
  void Release();

  unsigned char* bytes_ = nullptr;  // the start of a page mapped for it alone
  bool locked_ = false;
};

struct Identity {
  std::array<unsigned char, 32> public_key{};
  SecretKey secret_key;  // libsodium layout: seed then public key

  std::string PublicKeyHex() const;
  // Ed25519 signature (64 raw bytes) of `message`. Sign and Serialize throw IdentityError for
  // an identity that was moved from (it holds no key).
  std::string Sign(std::string_view message) const;
  // A new random identity.
  static Identity Generate();
  // The identity of a 32-byte seed.
  static Identity FromSeed(const std::array<unsigned char, 32>& seed);
  // The text a key file or --identity-stdin holds: "tidelane-ed25519-seed-v1 <64 hex>\n".
  std::string Serialize() const;
};

// Reads the identity at `path`, creating it (mode 0600, parent directories 0700) when the file
// does not exist. Throws IdentityError when the file is not a regular file, is readable or
// writable by group or others (never used, never changed: a leaked key must not sign), or is
// not a Tidelane identity (never overwritten: the operator decides).
Identity LoadOrCreateIdentity(const std::filesystem::path& path);
// Reads an existing identity file with the same checks; throws IdentityError if absent.
Identity LoadIdentityFile(const std::filesystem::path& path);
// Parses identity text (Serialize's format) read from `in`, e.g. stdin, so a key held in the
// system keychain reaches a child process without touching the disk. Reads one line.
// Throws IdentityError saying what is wrong ("<what>" names the source in messages).
Identity ReadIdentity(std::istream& in, std::string_view what);
Identity ParseIdentity(std::string_view text, std::string_view what);

// ---- the statements -----------------------------------------------------------------------

// What the worker that finished an answer states about its own work.
struct WorkerStatement {
  std::string request_id;
  std::string worker_name;
  std::string worker_public_key;  // hex; filled by SignWorkerStatement
  std::string model_kind;         // "gguf": sha256 of the model file; "synthetic": of its profile
  std::string model_id;
  std::string model_sha256;
  std::string prompt_encoding;  // "token-ids" (gguf) or "messages" (synthetic: no tokenizer)
  std::uint64_t prompt_tokens = 0;
  std::string prompt_sha256;
  std::uint64_t resumed_from_index = 0;  // tokens produced elsewhere before this worker
  std::string resumed_prefix_sha256;     // Sha256Strings of those tokens, as it was given them
  std::uint64_t output_to_index = 0;     // it produced tokens [resumed_from_index, to_index)
  std::string output_sha256;             // Sha256Strings of the tokens it produced
  std::string finish_reason;
  std::int64_t started_at_ms = 0;  // Unix time, milliseconds
  std::int64_t finished_at_ms = 0;

  nlohmann::json ToJson() const;
  static WorkerStatement FromJson(const nlohmann::json& j);  // throws ReceiptFormatError
};

// One stretch of the answer produced by one node: tokens [from_index, to_index).
struct RouteHop {
  std::string node;
  std::uint64_t from_index = 0;
  std::uint64_t to_index = 0;
  // "done" (the last hop), "failed" (the router moved on to the next hop) or "handoff" (a
  // prefill node that handed its KV cache to the next hop, which decoded on).
  std::string outcome;
  std::string reason;  // why it failed or what it handed on; empty when done
};

// What the router states about the whole request.
struct RouterStatement {
  std::string request_id;
  std::string prompt_messages_sha256;  // Sha256Strings(role0, content0, role1, ...) as sent
  std::uint64_t prompt_tokens = 0;
  std::uint64_t output_tokens = 0;
  std::string output_sha256;       // Sha256Strings of every output token, in index order
  std::string output_text_sha256;  // Sha256Hex of the answer text (the tokens concatenated)
  std::string finish_reason;
  std::vector<RouteHop> route;
  std::string router_public_key;  // hex; filled by Countersign
  std::int64_t accepted_at_ms = 0;
  std::int64_t done_at_ms = 0;
};

// The signed receipt, field for field tidelane.v1.Receipt.
struct Envelope {
  std::string payload;            // canonical JSON of the whole receipt payload
  std::string worker_signature;   // 64 raw bytes
  std::string worker_public_key;  // hex
  std::string router_signature;   // 64 raw bytes
  std::string router_public_key;  // hex
};

// The worker's half: the canonical statement (with the identity's public key filled in) and
// its signature. The router embeds `statement` verbatim.
struct SignedStatement {
  std::string statement;   // canonical JSON
  std::string signature;   // 64 raw bytes
  std::string public_key;  // hex
};
SignedStatement SignWorkerStatement(WorkerStatement statement, const Identity& worker);

// The router's half: checks the worker's signature and that its statement agrees with what
// the router saw (request id, the last hop's range and node, the hash of the tokens it sent);
// on success returns the countersigned envelope. On failure returns nothing and sets *problem
// to why: the router then sends Done without a receipt and says so in its log.
std::optional<Envelope> Countersign(const RouterStatement& request, const SignedStatement& worker,
                                    const std::vector<std::string>& output_tokens,
                                    const Identity& router, std::string* problem);

// ---- verification -------------------------------------------------------------------------

enum class Check {
  kOk,
  kMalformed,        // not a receipt: missing fields, bad hex, wrong types
  kNotCanonical,     // payload bytes are not their own canonical form
  kWorkerKey,        // envelope worker key differs from the statement's, or not pinned
  kRouterKey,        // envelope router key differs from the payload's, or not pinned
  kWorkerSignature,  // the worker's signature does not verify
  kRouterSignature,  // the router's countersignature does not verify
  kInconsistent,     // signed, but the statements disagree (route, ranges, counts)
  kAnswerMismatch,   // the answer text given does not match output_text_sha256
};
std::string_view CheckName(Check check);

struct Pins {
  std::string worker_public_key;  // hex; empty = any
  std::string router_public_key;  // hex; empty = any
};

struct Verification {
  Check failed = Check::kMalformed;
  std::string message;     // what failed, for a person; "" when ok
  nlohmann::json payload;  // the parsed payload when it could be parsed (null otherwise)
  bool ok() const { return failed == Check::kOk; }
};

// Checks everything: payload canonical and well-formed, keys match (and the pins), both
// signatures, the statements consistent. `answer_text`, when given, must hash to the
// payload's output_text_sha256 (the app checks the answer it shows is the one signed).
Verification Verify(const Envelope& envelope, const Pins& pins = {},
                    const std::optional<std::string_view>& answer_text = std::nullopt);

// ---- JSON documents (GET /v1/receipts/{id}, tidelane-verify, the app's history) ----------

// {"object":"tidelane.receipt","id":..., "payload":{...}, "worker_signature":hex, ...}: the
// payload as a readable object (its canonical form is the signed bytes), signatures in hex.
// Throws ReceiptFormatError if the payload is not JSON.
std::string ToJsonDocument(const Envelope& envelope, int indent = 2);
// The inverse; throws ReceiptFormatError for text that is not such a document.
Envelope FromJsonDocument(std::string_view text);

// "field: value" lines of what was signed, for people (tidelane-verify, the app's dialog).
std::vector<std::pair<std::string, std::string>> DescribePayload(const nlohmann::json& payload);

}  // namespace tidelane::receipt
