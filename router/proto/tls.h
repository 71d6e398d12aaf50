// Optional TLS for every gRPC hop, from PEM files named on the command line.
//
// Each process has at most one identity (certificate + private key) and one CA bundle it
// trusts for its peers:
//   - a process with a certificate serves TLS; without one it serves plaintext (loopback only
//     is the default everywhere, so plaintext never leaves the machine unless asked to);
//   - a client with a CA verifies the server against it (host name included) and, when it has
//     its own certificate too, presents it: that is how workers prove who they are to a router
//     (mutual TLS), and how a router proves itself to the workers it calls.
// Bearer tokens are checked on top of TLS, never instead of it.
//
// All functions are thread-safe (no shared state). Failures throw std::runtime_error with a
// message naming the file and what is wrong with it; callers turn that into exit code 2.
#pragma once

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_context.h>

#include <filesystem>
#include <memory>
#include <string>

namespace tidelane::tls {

// PEM file paths; an empty path means "not configured".
struct Files {
  std::filesystem::path cert;  // this process's certificate chain
  std::filesystem::path key;   // its private key: must not be readable by others
  std::filesystem::path ca;    // CA bundle this process trusts for its peers

  bool serves_tls() const { return !cert.empty(); }
  bool verifies_peers() const { return !ca.empty(); }
};

// Checks the combination (cert and key come together; a CA without a cert is fine for a pure
// client) and that each file exists, is PEM, and the key is not readable by others.
void Validate(const Files& files);

// How a TLS server treats client certificates.
enum class ClientCerts {
  kNone,      // not asked for
  kVerifyIf,  // verified against `ca` when presented (chat clients need none, workers do)
  kRequire,   // required and verified (a worker accepts calls only from its router)
};

// Plaintext when `files.cert` is empty; TLS otherwise, asking for client certificates as
// `mode` says (kNone when no CA is configured).
std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const Files& files, ClientCerts mode);

// Plaintext when `files.ca` is empty; TLS otherwise, verifying the server against `ca` and
// presenting `cert`/`key` when they are set.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const Files& files);

// True when the call came over TLS with a client certificate that verified against the CA.
bool PeerCertificateVerified(const grpc::ServerContextBase& context);

// The file's contents; throws naming the path when it is missing, unreadable, empty or not
// PEM. Private keys (`secret`) must also not be readable by others (group is allowed so a
// service group can share one).
std::string ReadPem(const std::filesystem::path& path, bool secret);

}  // namespace tidelane::tls
