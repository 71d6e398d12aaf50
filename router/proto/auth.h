// Bearer-token authentication shared by every Tidelane process.
//
// Every RPC carries metadata "authorization: Bearer <token>". Servers call CheckBearer at
// the top of each handler; clients call AttachBearer on each ClientContext. Tokens live in
// files readable only by their owner, never on command lines or in logs.
//
// All functions are thread-safe (they touch no shared state).
#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tidelane::auth {

// Reads the token from the first line of `path` (surrounding whitespace trimmed).
// Throws std::runtime_error naming the path when the file is missing, unreadable, empty,
// or readable or writable by group or others (a leaked secret must not be used silently).
std::string ReadTokenFile(const std::filesystem::path& path);

// OK when the call's "authorization" metadata is exactly "Bearer <expected>"; otherwise
// UNAUTHENTICATED with a message that says what was wrong but never echoes a token.
// The comparison takes the same time wherever the tokens differ.
grpc::Status CheckBearer(const grpc::ServerContextBase& context, std::string_view expected);

// Reads one token per line from `path` (blank lines and lines starting with '#' skipped), with
// ReadTokenFile's checks; throws when the file holds no token. One token per client, so each
// can be revoked and rate limited on its own.
std::vector<std::string> ReadTokenListFile(const std::filesystem::path& path);

// The index in `accepted` of the token an "authorization" value ("Bearer <token>") carries,
// or nothing. Every candidate is compared in full, so the time taken does not tell which one
// matched or how much of a wrong token was right.
std::optional<std::size_t> MatchBearer(std::string_view authorization,
                                       const std::vector<std::string>& accepted);

// CheckBearer against several accepted tokens; on OK, `*which` (when given) is the index of
// the one presented.
grpc::Status CheckBearerAny(const grpc::ServerContextBase& context,
                            const std::vector<std::string>& accepted, std::size_t* which);

// Adds "authorization: Bearer <token>" to an outgoing call.
void AttachBearer(grpc::ClientContext& context, std::string_view token);

// True when `a` equals `b`, in time that depends only on their lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// A digest that names a credential without holding it: 32 raw bytes of BLAKE2b-256, for
// records that must say which client made something (the router's ledger keeps it as a
// request's owner). Unkeyed on purpose: tokens are random high-entropy secrets, so the digest
// cannot be searched back to a token, and it must stay the same across restarts and token-file
// edits (a per-process key would orphan every stored request). Throws std::runtime_error when
// libsodium cannot initialise.
std::string CredentialDigest(std::string_view token);

}  // namespace tidelane::auth
