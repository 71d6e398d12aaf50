// Where a daemon's gRPC server listens: HOST:PORT over TCP, or unix:PATH, a Unix-domain socket
// for a router and workers on one machine (the desktop app's bundled ones).
//
// A Unix socket skips the loopback TCP stack on every message of every hop (the router-added
// latency is lower with it, docs/benchmarks/serving.md) and, with its file private to the user
// who started the daemon (mode 0600), no other local user can even open a connection; the bearer
// token is still checked on top. gRPC accepts "unix:PATH" and "unix:///ABSOLUTE"; a relative
// PATH is made absolute here, since peers dial the address from other working folders.
//
// gRPC replaces whatever socket is at the path when it binds, which would take the path over
// from a daemon still serving there; so a live socket is refused here before binding, and a
// socket left behind by a process that died is replaced.
//
// Not thread-safe; one per server, used by main around BuildAndStart.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace tidelane::proto {

// True for gRPC's Unix-domain socket syntax, "unix:...".
bool IsUnixAddress(std::string_view address);

class ListenAddress {
 public:
  enum class Security { kPlaintext, kTls };
  // Checks `address` before a server binds it. For unix:PATH: the path fits a socket address
  // (107 bytes), its folder exists, nothing is there but, at most, a socket nobody serves on,
  // and the server is not to speak TLS (TLS names hosts; a socket has none, and its file mode
  // is what keeps others out). TCP addresses are gRPC's to check. Throws std::runtime_error
  // naming the path and the problem.
  explicit ListenAddress(std::string_view address, Security security = Security::kPlaintext);
  ~ListenAddress();  // removes the socket file if it is still the one Bound() saw
  ListenAddress(const ListenAddress&) = delete;
  ListenAddress& operator=(const ListenAddress&) = delete;

  bool is_unix() const { return !path_.empty(); }
  // What to pass to grpc::ServerBuilder::AddListeningPort.
  const std::string& spec() const { return spec_; }

  // Once the server is listening, with `port` as AddListeningPort reported it: makes a Unix
  // socket readable and writable by this user only, and returns the address peers dial
  // (unix:/ABSOLUTE/PATH, or HOST:PORT with the port the system chose). Throws
  // std::runtime_error when the socket's mode cannot be set (the server should not serve then).
  std::string Bound(int port);

 private:
  std::string spec_;
  std::string path_;  // empty for TCP
  ino_t inode_ = 0;   // of the socket this process bound; 0 until Bound()
  dev_t device_ = 0;
};

}  // namespace tidelane::proto
