#include "router/proto/auth.h"

#include <sodium.h>
#include <sys/stat.h>

#include <fstream>
#include <stdexcept>

namespace tidelane::auth {
namespace {

constexpr std::string_view kScheme = "Bearer ";

std::string_view Trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

}  // namespace

std::string ReadTokenFile(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw std::runtime_error("auth token file " + path.string() +
                             " does not exist or cannot be read");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    throw std::runtime_error("auth token file " + path.string() +
                             " is accessible by group or others; run: chmod 600 " + path.string());
  }
  std::ifstream in(path);
  if (!in) throw std::runtime_error("auth token file " + path.string() + " cannot be opened");
  std::string line;
  std::getline(in, line);
  std::string token(Trim(line));
  sodium_memzero(line.data(), line.size());  // only `token` keeps the secret
  if (token.empty()) throw std::runtime_error("auth token file " + path.string() + " is empty");
  return token;
}

std::vector<std::string> ReadTokenListFile(const std::filesystem::path& path) {
  {
    std::string first = ReadTokenFile(path);  // the same permission and emptiness checks
    sodium_memzero(first.data(), first.size());
  }
  std::ifstream in(path);
  std::vector<std::string> tokens;
  for (std::string line; std::getline(in, line);) {
    const auto t = Trim(line);
    if (!t.empty() && t.front() != '#') tokens.emplace_back(t);
    sodium_memzero(line.data(), line.size());  // only `tokens` keeps the secrets
  }
  if (tokens.empty()) {
    throw std::runtime_error("token file " + path.string() + " holds no token (only comments)");
  }
  return tokens;
}

std::optional<std::size_t> MatchBearer(std::string_view authorization,
                                       const std::vector<std::string>& accepted) {
  if (authorization.substr(0, kScheme.size()) != kScheme) return std::nullopt;
  const auto presented = authorization.substr(kScheme.size());
  std::optional<std::size_t> match;
  for (std::size_t i = 0; i < accepted.size(); ++i) {
    if (ConstantTimeEquals(presented, accepted[i]) && !match) match = i;
  }
  return match;
}

grpc::Status CheckBearerAny(const grpc::ServerContextBase& context,
                            const std::vector<std::string>& accepted, std::size_t* which) {
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return {grpc::StatusCode::UNAUTHENTICATED, "missing 'authorization: Bearer <token>' metadata"};
  }
  const std::string_view value(it->second.data(), it->second.size());
  if (value.substr(0, kScheme.size()) != kScheme) {
    return {grpc::StatusCode::UNAUTHENTICATED, "authorization metadata must use the Bearer scheme"};
  }
  const auto match = MatchBearer(value, accepted);
  if (!match) return {grpc::StatusCode::UNAUTHENTICATED, "bearer token not accepted"};
  if (which) *which = *match;
  return grpc::Status::OK;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string CredentialDigest(std::string_view token) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  // Domain separation from every other hash of a token (the rate limiter's keys are BLAKE2b
  // too): the same token gives unrelated values in each place.
  static constexpr std::string_view kDomain = "tidelane.credential-owner/1:";
  std::string digest(crypto_generichash_BYTES, '\0');
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, digest.size());
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(kDomain.data()),
                            kDomain.size());
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(token.data()),
                            token.size());
  crypto_generichash_final(&state, reinterpret_cast<unsigned char*>(digest.data()), digest.size());
  sodium_memzero(&state, sizeof state);  // it held the token's bytes
  return digest;
}

grpc::Status CheckBearer(const grpc::ServerContextBase& context, std::string_view expected) {
  return CheckBearerAny(context, {std::string(expected)}, nullptr);
}

void AttachBearer(grpc::ClientContext& context, std::string_view token) {
  context.AddMetadata("authorization", std::string(kScheme) + std::string(token));
}

}  // namespace tidelane::auth
