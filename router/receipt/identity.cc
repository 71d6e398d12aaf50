// Ed25519 identities in files and streams. The file holds only the 32-byte seed, in hex, after
// a header naming the format: a person who opens it sees what it is, and a file of another
// kind (a token, a PEM key) is refused instead of being misread as a key.
#include <fcntl.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>
#include <sstream>
#include <utility>

#include "router/receipt/receipt.h"

namespace tidelane::receipt {
namespace {

std::string Errno() {
  return std::strerror(errno);
}

// The mode check every secret file in Tidelane makes (auth tokens too): group or others
// having any access means the key may have leaked, so it must not sign anything.
void CheckPrivate(const std::filesystem::path& path, const struct stat& st) {
  if (!S_ISREG(st.st_mode)) {
    throw IdentityError("identity file " + path.string() + " is not a regular file");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    throw IdentityError(
        "identity file " + path.string() + " is accessible by group or others (mode " + mode +
        "); its key may have leaked. If it has not, run: chmod 600 " + path.string());
  }
}

Identity ReadFile(const std::filesystem::path& path) {
  // Opened first and checked through the descriptor, so the file checked is the file read.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    throw IdentityError("cannot open identity file " + path.string() + ": " + Errno());
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string why = Errno();
    ::close(fd);
    throw IdentityError("cannot stat identity file " + path.string() + ": " + why);
  }
  try {
    CheckPrivate(path, st);
  } catch (...) {
    ::close(fd);
    throw;
  }
  std::string text;
  char buffer[512];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = Errno();
      ::close(fd);
      throw IdentityError("cannot read identity file " + path.string() + ": " + why);
    }
    if (n == 0 || text.size() > 4096) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  Identity id = ParseIdentity(text, "identity file " + path.string());
  sodium_memzero(text.data(), text.size());
  return id;
}

std::size_t PageSize() {
  static const std::size_t size = [] {
    const long page = ::sysconf(_SC_PAGESIZE);
    return page > 0 ? static_cast<std::size_t>(page) : std::size_t{4096};
  }();
  return size;
}

void RequireKey(const SecretKey& key) {
  if (key.empty()) throw IdentityError("this identity holds no key (it was moved from)");
}

}  // namespace

// A whole page per key, so locking it never pins (and unlocking never unpins) anything else:
// mlock works on pages and does not count, so two keys sharing a page would unlock each other.
SecretKey::SecretKey() {
  static_assert(kSize <= 4096);
  void* page =
      ::mmap(nullptr, PageSize(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) throw std::bad_alloc();
  bytes_ = static_cast<unsigned char*>(page);  // anonymous pages start zeroed
  // Also marks the page MADV_DONTDUMP. Failing (RLIMIT_MEMLOCK is often 64 KiB) only means
  // the key may be swapped out; locked() lets the daemon say so.
  locked_ = sodium_mlock(bytes_, PageSize()) == 0;
}

SecretKey::~SecretKey() {
  Release();
}

SecretKey::SecretKey(const SecretKey& other) : SecretKey() {
  if (other.empty()) {
    Release();  // a copy of an empty key is empty too
    return;
  }
  std::memcpy(bytes_, other.bytes_, kSize);
}

SecretKey& SecretKey::operator=(const SecretKey& other) {
  if (this != &other) *this = SecretKey(other);
  return *this;
}

SecretKey::SecretKey(SecretKey&& other) noexcept
    : bytes_(std::exchange(other.bytes_, nullptr)), locked_(std::exchange(other.locked_, false)) {}

SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
  if (this != &other) {
    Release();  // this key is wiped before the other takes its place
    bytes_ = std::exchange(other.bytes_, nullptr);
    locked_ = std::exchange(other.locked_, false);
  }
  return *this;
}

void SecretKey::Wipe() {
  if (bytes_) sodium_memzero(bytes_, kSize);
}

void SecretKey::Release() {
  if (!bytes_) return;
  Wipe();
  // sodium_munlock wipes the page again and undoes MADV_DONTDUMP before unlocking.
  if (locked_) sodium_munlock(bytes_, PageSize());
  ::munmap(bytes_, PageSize());
  bytes_ = nullptr;
  locked_ = false;
}

std::string Identity::PublicKeyHex() const {
  return ToHex({reinterpret_cast<const char*>(public_key.data()), public_key.size()});
}

std::string Identity::Sign(std::string_view message) const {
  EnsureSodium();
  RequireKey(secret_key);
  std::string signature(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(signature.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       secret_key.data());
  return signature;
}

Identity Identity::Generate() {
  EnsureSodium();
  std::array<unsigned char, 32> seed{};
  randombytes_buf(seed.data(), seed.size());
  Identity id = FromSeed(seed);
  sodium_memzero(seed.data(), seed.size());
  return id;
}

Identity Identity::FromSeed(const std::array<unsigned char, 32>& seed) {
  EnsureSodium();
  Identity id;
  crypto_sign_seed_keypair(id.public_key.data(), id.secret_key.data(), seed.data());
  return id;
}

std::string Identity::Serialize() const {
  RequireKey(secret_key);
  // The seed is the first half of libsodium's secret key.
  return std::string(kIdentityHeader) + " " +
         ToHex({reinterpret_cast<const char*>(secret_key.data()), 32}) + "\n";
}

Identity ParseIdentity(std::string_view text, std::string_view what) {
  const auto end = text.find_last_not_of(" \t\r\n");
  if (end == std::string_view::npos) throw IdentityError(std::string(what) + " is empty");
  text = text.substr(0, end + 1);
  const std::string header = std::string(kIdentityHeader) + " ";
  if (text.substr(0, header.size()) != header) {
    throw IdentityError(std::string(what) + " is not a Tidelane identity (it must be one line: \"" +
                        std::string(kIdentityHeader) + " <64 hex digits>\")");
  }
  const auto seed_hex = text.substr(header.size());
  auto bytes = FromHex(seed_hex);
  if (seed_hex.size() != 64 || !bytes) {
    throw IdentityError(std::string(what) +
                        " is corrupt: the key must be 64 lowercase hex digits after the header");
  }
  std::string& raw = bytes.value();
  std::array<unsigned char, 32> seed{};
  std::memcpy(seed.data(), raw.data(), seed.size());
  sodium_memzero(raw.data(), raw.size());
  Identity id = Identity::FromSeed(seed);
  sodium_memzero(seed.data(), seed.size());
  return id;
}

Identity ReadIdentity(std::istream& in, std::string_view what) {
  std::string line;
  if (!std::getline(in, line) && line.empty()) {
    throw IdentityError(std::string(what) + " gave no identity (end of input)");
  }
  Identity id = ParseIdentity(line, what);
  sodium_memzero(line.data(), line.size());
  return id;
}

Identity LoadIdentityFile(const std::filesystem::path& path) {
  return ReadFile(path);
}

Identity LoadOrCreateIdentity(const std::filesystem::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return ReadFile(path);
  if (errno != ENOENT) {
    throw IdentityError("cannot stat identity file " + path.string() + ": " + Errno());
  }
  if (path.has_parent_path() && !std::filesystem::exists(path.parent_path())) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (!ec) {
      std::filesystem::permissions(path.parent_path(), std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::replace, ec);
    }
    if (ec) {
      throw IdentityError("cannot create the directory of identity file " + path.string() + ": " +
                          ec.message());
    }
  }
  Identity id = Identity::Generate();
  std::string text = id.Serialize();
  // Written whole to a private temporary name, then linked into place: link() fails if the
  // file appeared meanwhile (many workers starting at once), and then that key wins, so
  // nobody ever reads a half-written key.
  const std::string tmp = path.string() + ".tmp." + std::to_string(::getpid()) + "." +
                          std::to_string(randombytes_random());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw IdentityError("cannot create identity file " + path.string() + ": " + Errno());
  }
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
  std::string why = written ? "" : Errno();
  ::close(fd);
  sodium_memzero(text.data(), text.size());
  if (!written) {
    ::unlink(tmp.c_str());
    throw IdentityError("cannot write identity file " + path.string() + ": " + why);
  }
  const bool linked = ::link(tmp.c_str(), path.c_str()) == 0;
  const int link_errno = errno;
  ::unlink(tmp.c_str());
  if (!linked) {
    if (link_errno == EEXIST) return ReadFile(path);
    throw IdentityError("cannot create identity file " + path.string() + ": " +
                        std::strerror(link_errno));
  }
  return id;
}

}  // namespace tidelane::receipt
