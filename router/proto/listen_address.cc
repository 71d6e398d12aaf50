#include "router/proto/listen_address.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace tidelane::proto {
namespace {

constexpr std::string_view kUnix = "unix:";

std::string Errno(int err) {
  return std::error_code(err, std::generic_category()).message();
}

std::runtime_error Problem(const std::string& path, const std::string& what) {
  return std::runtime_error("cannot listen on unix:" + path + ": " + what);
}

// Whether a server accepts connections on the socket at `path`: a socket file whose process
// died refuses them (ECONNREFUSED). Any other failure is reported, not taken for a dead socket:
// gRPC would unlink it.
enum class Probe { kServed, kDead, kUnknown };
Probe ProbeSocket(const std::string& path, int* error) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = errno;
    return Probe::kUnknown;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  *error = rc == 0 ? 0 : errno;
  ::close(fd);
  if (rc == 0) return Probe::kServed;
  return *error == ECONNREFUSED || *error == ENOENT ? Probe::kDead : Probe::kUnknown;
}

}  // namespace

bool IsUnixAddress(std::string_view address) {
  return address.starts_with(kUnix);
}

ListenAddress::ListenAddress(std::string_view address, Security security) : spec_(address) {
  if (!IsUnixAddress(address)) return;
  if (security == Security::kTls) {
    throw std::runtime_error("TLS is for a TCP address (HOST:PORT); " + std::string(address) +
                             " is a Unix socket, private to this user without TLS");
  }
  std::string_view rest = address.substr(kUnix.size());
  if (rest.starts_with("//")) {
    // unix://ABSOLUTE: the third slash begins the path; anything else would be an authority.
    rest.remove_prefix(2);
    if (!rest.starts_with('/')) {
      throw std::runtime_error("cannot listen on " + std::string(address) +
                               ": write unix:PATH or unix:///ABSOLUTE/PATH");
    }
  }
  if (rest.empty()) throw std::runtime_error("cannot listen on unix:: no socket path given");
  std::error_code ec;
  path_ = std::filesystem::absolute(std::filesystem::path(rest), ec).lexically_normal().string();
  if (ec) throw Problem(std::string(rest), ec.message());
  spec_ = std::string(kUnix) + path_;
  if (path_.size() >= sizeof(sockaddr_un::sun_path)) {
    throw Problem(path_, "the path is " + std::to_string(path_.size()) +
                             " bytes long; a socket's path may have at most " +
                             std::to_string(sizeof(sockaddr_un::sun_path) - 1));
  }
  const auto folder = std::filesystem::path(path_).parent_path();
  if (!std::filesystem::is_directory(folder, ec)) {
    throw Problem(path_, "the folder " + folder.string() + " does not exist");
  }
  struct stat st {};
  if (::lstat(path_.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw Problem(path_, Errno(errno));
  }
  if (!S_ISSOCK(st.st_mode)) throw Problem(path_, "a file that is not a socket is in the way");
  int error = 0;
  switch (ProbeSocket(path_, &error)) {
    case Probe::kServed:
      throw Problem(path_, "another process is serving on that socket");
    case Probe::kUnknown:
      throw Problem(path_, "cannot tell whether another process serves on that socket (" +
                               Errno(error) + ")");
    case Probe::kDead:
      break;
  }
  // A socket left by a process that died: gRPC unlinks it before binding.
}

ListenAddress::~ListenAddress() {
  if (inode_ == 0) return;
  // Only our own socket: a newer daemon that found this one dead may have replaced it.
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == inode_ &&
      st.st_dev == device_) {
    ::unlink(path_.c_str());
  }
}

std::string ListenAddress::Bound(int port) {
  if (!is_unix()) {
    const auto colon = spec_.rfind(':');
    return (colon == std::string::npos ? spec_ : spec_.substr(0, colon)) + ":" +
           std::to_string(port);
  }
  // gRPC creates the socket with the process's umask; the socket's write permission is what
  // lets a process connect, so this is the access check for the whole server.
  if (::chmod(path_.c_str(), S_IRUSR | S_IWUSR) != 0) {
    throw Problem(path_, "cannot make the socket private: " + Errno(errno));
  }
  struct stat st {};
  if (::lstat(path_.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    throw Problem(path_, "the socket vanished after binding");
  }
  inode_ = st.st_ino;
  device_ = st.st_dev;
  return spec_;
}

}  // namespace tidelane::proto
