// Receipts (router/receipt): an untampered receipt verifies; altering any signed field, either
// signature or either public key makes verification fail and say which check; identities are
// kept in 0600 files, refused when exposed or corrupt, and can come from a stream.
#include "router/receipt/receipt.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tidelane::receipt {
namespace {

using nlohmann::json;

struct Fixture {
  Identity worker = Identity::Generate();
  Identity router = Identity::Generate();
  std::vector<std::string> tokens{"Hel", "lo", " wor", "ld"};
  Envelope envelope;
};

// A receipt for an answer started on node-a (tokens 0..1), which failed, and finished on
// node-b (tokens 1..4): the failover case the route must cover.
Fixture MakeReceipt() {
  Fixture f;
  WorkerStatement w;
  w.request_id = "req-1";
  w.worker_name = "node-b";
  w.model_kind = "synthetic";
  w.model_id = "tidelane-synthetic";
  w.model_sha256 = Sha256Hex("profile mid");
  w.prompt_encoding = "messages";
  w.prompt_tokens = 7;
  w.prompt_sha256 = Sha256Strings({"user", "hi"});
  w.resumed_from_index = 1;
  w.resumed_prefix_sha256 = Sha256Strings({"Hel"});
  w.output_to_index = 4;
  w.output_sha256 = Sha256Strings({"lo", " wor", "ld"});
  w.finish_reason = "stop";
  w.started_at_ms = 1700000000100;
  w.finished_at_ms = 1700000000200;
  const SignedStatement signed_statement = SignWorkerStatement(w, f.worker);

  RouterStatement r;
  r.request_id = "req-1";
  r.prompt_messages_sha256 = Sha256Strings({"user", "hi"});
  r.prompt_tokens = 7;
  r.finish_reason = "stop";
  r.route = {{"node-a", 0, 1, "failed", "worker failed: connection reset"},
             {"node-b", 1, 4, "done", ""}};
  r.accepted_at_ms = 1700000000000;
  r.done_at_ms = 1700000000250;
  std::string problem;
  auto e = Countersign(r, signed_statement, f.tokens, f.router, &problem);
  EXPECT_TRUE(e) << problem;
  if (e) f.envelope = *e;
  return f;
}

// The envelope with its payload changed by `edit` and re-canonicalised (a forger's best try).
Envelope WithPayload(const Envelope& e, const std::function<void(json&)>& edit) {
  Envelope out = e;
  json p = json::parse(e.payload);
  edit(p);
  out.payload = Canonical(p);
  return out;
}

json Altered(const json& v) {
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    // Keep hashes and keys well-formed hex, so only the signature can catch the change.
    s[0] = s[0] == '0' ? '1' : '0';
    return s;
  }
  if (v.is_number_unsigned()) return v.get<std::uint64_t>() + 1;
  return v.get<std::int64_t>() + 1;
}

// The prompt and token hashes anyone can recompute in a line of Python (the value below is
// hashlib.sha256(b"".join(b"%d:%s" % (len(t), t) for t in parts)).hexdigest()), whether the
// router hashes strings it holds or views of a request's messages; lengths count bytes.
TEST(Receipt, StringHashesAreNetstringsOverBytes) {
  const std::string kExpected = "7b1122cfcd508d9847d978efed44f7bd58c1346524295d0c796439d478c7a19d";
  EXPECT_EQ(Sha256Strings({"user", "hi", "assistant", "\xc3\xa9t\xc3\xa9"}), kExpected);
  const std::string held = "assistant";
  EXPECT_EQ(Sha256StringViews({"user", "hi", held, "\xc3\xa9t\xc3\xa9"}), kExpected);
  EXPECT_NE(Sha256StringViews({"user", "hi", held}), kExpected);
}

TEST(Receipt, UntamperedReceiptVerifies) {
  const Fixture f = MakeReceipt();
  const auto v = Verify(f.envelope);
  EXPECT_TRUE(v.ok()) << v.message;
  EXPECT_TRUE(Verify(f.envelope, {}, std::string_view("Hello world")).ok());
  EXPECT_EQ(v.payload["route"].size(), 2u);
  EXPECT_EQ(v.payload["worker_statement"]["worker"]["public_key"], f.worker.PublicKeyHex());
}

// A split request: node-a prefilled and handed its KV cache on, node-b decoded and finished.
TEST(Receipt, HandoffHopVerifiesAndOtherOutcomesDoNot) {
  Fixture f;
  WorkerStatement w;
  w.request_id = "req-2";
  w.worker_name = "node-b";
  w.model_kind = "gguf";
  w.model_id = "m";
  w.model_sha256 = Sha256Hex("weights");
  w.prompt_encoding = "token-ids";
  w.prompt_tokens = 3;
  w.prompt_sha256 = Sha256TokenIds({1, 2, 3});
  w.resumed_from_index = 1;
  w.resumed_prefix_sha256 = Sha256Strings({"Hel"});
  w.output_to_index = 4;
  w.output_sha256 = Sha256Strings({"lo", " wor", "ld"});
  w.finish_reason = "length";
  w.started_at_ms = 1700000000100;
  w.finished_at_ms = 1700000000200;
  const SignedStatement st = SignWorkerStatement(w, f.worker);
  RouterStatement r;
  r.request_id = "req-2";
  r.prompt_messages_sha256 = Sha256Strings({"user", "hi"});
  r.prompt_tokens = 3;
  r.finish_reason = "length";
  r.route = {{"node-a", 0, 1, "handoff", "prefilled; KV cache handed to node-b"},
             {"node-b", 1, 4, "done", ""}};
  r.accepted_at_ms = 1700000000000;
  r.done_at_ms = 1700000000250;
  std::string problem;
  const auto e = Countersign(r, st, f.tokens, f.router, &problem);
  ASSERT_TRUE(e) << problem;
  EXPECT_TRUE(Verify(*e).ok());

  r.route.front().outcome = "skipped";
  EXPECT_FALSE(Countersign(r, st, f.tokens, f.router, &problem));
  EXPECT_NE(problem.find("outcome"), std::string::npos) << problem;
  r.route.front().outcome = "handoff";
  r.route.back().outcome = "handoff";  // the last hop must be the one that finished
  EXPECT_FALSE(Countersign(r, st, f.tokens, f.router, &problem));
}

TEST(Receipt, EverySignedFieldIsCovered) {
  const Fixture f = MakeReceipt();
  // Every leaf of the payload, the worker statement included.
  const std::vector<std::string> fields = {
      "/request_id",
      "/prompt/messages_sha256",
      "/prompt/tokens",
      "/output/tokens",
      "/output/sha256",
      "/output/text_sha256",
      "/finish_reason",
      "/accepted_at_ms",
      "/done_at_ms",
      "/route/0/node",
      "/route/0/from_index",
      "/route/0/to_index",
      "/route/0/outcome",
      "/route/0/reason",
      "/route/1/node",
      "/route/1/from_index",
      "/route/1/to_index",
      "/router/public_key",
      "/worker_statement/request_id",
      "/worker_statement/worker/name",
      "/worker_statement/worker/public_key",
      "/worker_statement/model/kind",
      "/worker_statement/model/id",
      "/worker_statement/model/sha256",
      "/worker_statement/prompt/encoding",
      "/worker_statement/prompt/tokens",
      "/worker_statement/prompt/sha256",
      "/worker_statement/resumed_from/index",
      "/worker_statement/resumed_from/prefix_sha256",
      "/worker_statement/output/to_index",
      "/worker_statement/output/sha256",
      "/worker_statement/finish_reason",
      "/worker_statement/started_at_ms",
      "/worker_statement/finished_at_ms",
  };
  for (const auto& field : fields) {
    SCOPED_TRACE(field);
    const json::json_pointer at(field);
    const auto e = WithPayload(f.envelope, [&](json& p) { p[at] = Altered(p.at(at)); });
    const auto v = Verify(e);
    EXPECT_FALSE(v.ok());
    const bool in_statement = field.starts_with("/worker_statement/");
    if (field == "/worker_statement/worker/public_key") {
      EXPECT_EQ(v.failed, Check::kWorkerKey);
    } else if (field == "/router/public_key") {
      EXPECT_EQ(v.failed, Check::kRouterKey);
    } else {
      EXPECT_EQ(v.failed, in_statement ? Check::kWorkerSignature : Check::kRouterSignature)
          << CheckName(v.failed) << ": " << v.message;
    }
  }
  // Removing a hop or adding one is caught too.
  EXPECT_EQ(Verify(WithPayload(f.envelope, [](json& p) { p["route"].erase(0); })).failed,
            Check::kRouterSignature);
  EXPECT_EQ(
      Verify(WithPayload(f.envelope, [](json& p) { p["route"].push_back(p["route"][1]); })).failed,
      Check::kRouterSignature);
}

TEST(Receipt, EitherSignatureOrKeyAlteredFails) {
  const Fixture f = MakeReceipt();
  const Identity other = Identity::Generate();
  {
    Envelope e = f.envelope;
    e.worker_signature[5] ^= 1;
    EXPECT_EQ(Verify(e).failed, Check::kWorkerSignature);
  }
  {
    Envelope e = f.envelope;
    e.router_signature[5] ^= 1;
    EXPECT_EQ(Verify(e).failed, Check::kRouterSignature);
  }
  {
    Envelope e = f.envelope;
    e.worker_public_key = other.PublicKeyHex();
    EXPECT_EQ(Verify(e).failed, Check::kWorkerKey);
  }
  {
    Envelope e = f.envelope;
    e.router_public_key = other.PublicKeyHex();
    EXPECT_EQ(Verify(e).failed, Check::kRouterKey);
  }
  {
    // A forger re-signing with their own key as "router" is caught by pinning the real one.
    Envelope e =
        WithPayload(f.envelope, [&](json& p) { p["router"]["public_key"] = other.PublicKeyHex(); });
    e.router_public_key = other.PublicKeyHex();
    e.router_signature = other.Sign(e.payload);
    EXPECT_TRUE(Verify(e).ok());
    const auto pinned = Verify(e, {.router_public_key = f.router.PublicKeyHex()});
    EXPECT_EQ(pinned.failed, Check::kRouterKey);
  }
  EXPECT_TRUE(Verify(f.envelope, {f.worker.PublicKeyHex(), f.router.PublicKeyHex()}).ok());
  EXPECT_EQ(Verify(f.envelope, {.worker_public_key = other.PublicKeyHex()}).failed,
            Check::kWorkerKey);
}

TEST(Receipt, AnswerMustBeTheSignedOne) {
  const Fixture f = MakeReceipt();
  EXPECT_EQ(Verify(f.envelope, {}, std::string_view("Hello World")).failed, Check::kAnswerMismatch);
}

TEST(Receipt, NonCanonicalOrMalformedPayloadIsRefused) {
  const Fixture f = MakeReceipt();
  Envelope spaced = f.envelope;
  spaced.payload.insert(1, " ");
  EXPECT_EQ(Verify(spaced).failed, Check::kNotCanonical);
  Envelope garbage = f.envelope;
  garbage.payload = "not json";
  EXPECT_EQ(Verify(garbage).failed, Check::kMalformed);
  EXPECT_EQ(Verify(WithPayload(f.envelope, [](json& p) { p.erase("route"); })).failed,
            Check::kMalformed);
  EXPECT_THROW(Canonical(json{{"x", 0.5}}), ReceiptFormatError);
  // A float has no canonical form: refused as malformed, never thrown at the verifier.
  Envelope floating = f.envelope;
  const std::string done_at = "\"done_at_ms\":1700000000250";
  const auto at = floating.payload.find(done_at);
  ASSERT_NE(at, std::string::npos) << floating.payload;
  floating.payload.insert(at + done_at.size(), ".5");
  const auto v = Verify(floating);
  EXPECT_EQ(v.failed, Check::kMalformed);
  EXPECT_NE(v.message.find("floating-point"), std::string::npos) << v.message;
}

TEST(Receipt, JsonDocumentRoundTripsAndTamperingShows) {
  const Fixture f = MakeReceipt();
  const std::string doc = ToJsonDocument(f.envelope);
  const Envelope back = FromJsonDocument(doc);
  EXPECT_EQ(back.payload, f.envelope.payload);
  EXPECT_TRUE(Verify(back).ok());
  json j = json::parse(doc);
  j["payload"]["output"]["tokens"] = 5;
  EXPECT_FALSE(Verify(FromJsonDocument(j.dump())).ok());
  EXPECT_THROW(FromJsonDocument("{}"), ReceiptFormatError);
  EXPECT_THROW(FromJsonDocument("[1"), ReceiptFormatError);
  // Found by fuzz_receipt: a non-string "object" was read as a string and threw past the caller.
  EXPECT_THROW(FromJsonDocument(R"({"object":[1,2,{"a":1.5}],"worker_signature":"e"})"),
               ReceiptFormatError);
  const auto lines = DescribePayload(json::parse(f.envelope.payload));
  bool saw_route = false;
  for (const auto& [k, v] : lines)
    saw_route = saw_route || (k == "route 1" && v.find("node-a") == 0);
  EXPECT_TRUE(saw_route);
}

TEST(Receipt, RouterRefusesToVouchForOtherTokens) {
  Fixture f = MakeReceipt();
  WorkerStatement w =
      WorkerStatement::FromJson(json::parse(f.envelope.payload)["worker_statement"]);
  const SignedStatement s = SignWorkerStatement(w, f.worker);
  RouterStatement r;
  r.request_id = "req-1";
  r.prompt_messages_sha256 = Sha256Strings({});
  r.finish_reason = "stop";
  r.route = {{"node-a", 0, 1, "failed", "x"}, {"node-b", 1, 4, "done", ""}};
  std::string problem;
  std::vector<std::string> other = f.tokens;
  other[2] = " WOR";
  EXPECT_FALSE(Countersign(r, s, other, f.router, &problem));
  EXPECT_NE(problem.find("other tokens"), std::string::npos) << problem;
  SignedStatement forged = s;
  forged.signature[0] ^= 1;
  EXPECT_FALSE(Countersign(r, forged, f.tokens, f.router, &problem));
  EXPECT_NE(problem.find("signature"), std::string::npos) << problem;
  r.route = {{"node-b", 0, 4, "done", ""}};  // the route must match the worker's range
  EXPECT_FALSE(Countersign(r, s, f.tokens, f.router, &problem));
  EXPECT_TRUE(
      Countersign({.request_id = "req-1",
                   .prompt_messages_sha256 = Sha256Strings({}),
                   .finish_reason = "stop",
                   .route = {{"node-a", 0, 1, "failed", "x"}, {"node-b", 1, 4, "done", ""}}},
                  s, f.tokens, f.router, &problem))
      << problem;
}

class IdentityFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tidelane-identity-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static std::string Read(const std::filesystem::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::filesystem::path dir_;
};

TEST_F(IdentityFile, CreatedPrivateOnceAndReloaded) {
  const auto path = dir_ / "state" / "worker.key";
  const Identity created = LoadOrCreateIdentity(path);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(path.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
  const Identity again = LoadOrCreateIdentity(path);
  EXPECT_EQ(again.PublicKeyHex(), created.PublicKeyHex());
  EXPECT_EQ(LoadIdentityFile(path).PublicKeyHex(), created.PublicKeyHex());
  // The key signs verifiably.
  const std::string sig = again.Sign("x");
  EXPECT_EQ(sig.size(), 64u);
}

TEST_F(IdentityFile, WiderPermissionsAreRefusedAndLeftAlone) {
  const auto path = dir_ / "router.key";
  LoadOrCreateIdentity(path);
  const std::string before = Read(path);
  std::filesystem::permissions(path, std::filesystem::perms::group_read,
                               std::filesystem::perm_options::add);
  try {
    LoadOrCreateIdentity(path);
    FAIL() << "an identity readable by the group was used";
  } catch (const IdentityError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("group or others"), std::string::npos) << what;
    EXPECT_NE(what.find("chmod 600"), std::string::npos) << what;
    EXPECT_NE(what.find(path.string()), std::string::npos) << what;
  }
  EXPECT_EQ(Read(path), before);
}

TEST_F(IdentityFile, CorruptFileIsRefusedNotOverwritten) {
  std::filesystem::create_directories(dir_);
  const auto path = dir_ / "worker.key";
  for (const std::string& content :
       {std::string("hello\n"), std::string(kIdentityHeader) + " abcd\n",
        std::string(kIdentityHeader) + " " + std::string(64, 'z') + "\n", std::string()}) {
    {
      std::ofstream out(path, std::ios::trunc);
      out << content;
    }
    std::filesystem::permissions(
        path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
        std::filesystem::perm_options::replace);
    EXPECT_THROW(LoadOrCreateIdentity(path), IdentityError) << content;
    EXPECT_EQ(Read(path), content);
  }
  EXPECT_THROW(LoadIdentityFile(dir_ / "absent.key"), IdentityError);
}

TEST(IdentityStream, ReadsTheKeyFromAStream) {
  const Identity id = Identity::Generate();
  std::istringstream in(id.Serialize());
  EXPECT_EQ(ReadIdentity(in, "stdin").PublicKeyHex(), id.PublicKeyHex());
  std::istringstream empty("");
  EXPECT_THROW(ReadIdentity(empty, "stdin"), IdentityError);
  std::istringstream wrong("secret\n");
  try {
    ReadIdentity(wrong, "stdin");
    FAIL();
  } catch (const IdentityError& e) {
    EXPECT_NE(std::string(e.what()).find("stdin"), std::string::npos);
  }
}

// Issue 9: a secret key lives in a page of its own. A move hands that page over (no second
// copy of the key is made) and leaves the source holding no key; a copy has its own page;
// Wipe zeroes the key; a destroyed identity's page is gone (wiped first, see SecretKey).
TEST(IdentityMemory, MovesHandTheKeyOverCopiesAreSeparateAndNothingIsLeftBehind) {
  Identity original = Identity::Generate();
  const std::string signature = original.Sign("message");
  const unsigned char* page = original.secret_key.data();
  ASSERT_NE(page, nullptr);
  const auto zero = [](const SecretKey& key) {
    return std::all_of(key.data(), key.data() + key.size(), [](unsigned char b) { return b == 0; });
  };
  EXPECT_FALSE(zero(original.secret_key));

  Identity moved = std::move(original);
  EXPECT_TRUE(original.secret_key.empty());  // NOLINT(bugprone-use-after-move): the point
  EXPECT_EQ(original.secret_key.data(), nullptr);
  EXPECT_EQ(moved.secret_key.data(), page);  // handed over, not copied
  EXPECT_EQ(moved.Sign("message"), signature);
  EXPECT_THROW(original.Sign("message"), IdentityError);
  EXPECT_THROW(original.Serialize(), IdentityError);

  Identity copy = moved;
  EXPECT_NE(copy.secret_key.data(), moved.secret_key.data());
  EXPECT_EQ(copy.Sign("message"), signature);
  copy.secret_key.Wipe();
  EXPECT_TRUE(zero(copy.secret_key));
  EXPECT_EQ(moved.Sign("message"), signature);  // the other copy is untouched

  // Assigning over an identity replaces its key; a moved-from one can be given a new key.
  copy = moved;
  EXPECT_EQ(copy.Sign("message"), signature);
  original = Identity::Generate();
  EXPECT_FALSE(original.secret_key.empty());
  EXPECT_NE(original.Sign("message"), signature);

  // Locked out of swap when the memlock limit leaves room (it often is 64 KiB or more).
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_MEMLOCK, &limit), 0);
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= (1u << 20)) {
    EXPECT_TRUE(moved.secret_key.locked());
  }

  // Once destroyed, the key's page is no longer mapped (mincore fails with ENOMEM), so no
  // pointer into it can read the key back.
  const long page_size = sysconf(_SC_PAGESIZE);
  void* const address = const_cast<unsigned char*>(page);
  unsigned char resident = 0;
  ASSERT_EQ(mincore(address, static_cast<std::size_t>(page_size), &resident), 0);
  { Identity gone = std::move(moved); }
  errno = 0;
  EXPECT_EQ(mincore(address, static_cast<std::size_t>(page_size), &resident), -1);
  EXPECT_EQ(errno, ENOMEM);
}

}  // namespace
}  // namespace tidelane::receipt
