#include "router/proto/tls.h"

#include <grpcpp/security/auth_context.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace tidelane::tls {

std::string ReadPem(const std::filesystem::path& path, bool secret) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw std::runtime_error("TLS file " + path.string() + " does not exist or cannot be read");
  }
  if (secret && (st.st_mode & S_IRWXO) != 0) {
    throw std::runtime_error("TLS private key " + path.string() +
                             " is accessible by others; run: chmod 600 " + path.string());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("TLS file " + path.string() + " cannot be opened");
  std::ostringstream text;
  text << in.rdbuf();
  std::string pem = text.str();
  if (pem.empty()) throw std::runtime_error("TLS file " + path.string() + " is empty");
  if (pem.find("-----BEGIN ") == std::string::npos) {
    throw std::runtime_error("TLS file " + path.string() + " is not PEM (no -----BEGIN line)");
  }
  return pem;
}

void Validate(const Files& files) {
  if (files.cert.empty() != files.key.empty()) {
    throw std::runtime_error(
        "TLS needs both a certificate and its private key (--tls-cert and "
        "--tls-key), or neither");
  }
  if (!files.cert.empty()) {
    ReadPem(files.cert, false);
    ReadPem(files.key, true);
  }
  if (!files.ca.empty()) ReadPem(files.ca, false);
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const Files& files, ClientCerts mode) {
  Validate(files);
  if (!files.serves_tls()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({ReadPem(files.key, true), ReadPem(files.cert, false)});
  if (files.verifies_peers() && mode != ClientCerts::kNone) {
    options.pem_root_certs = ReadPem(files.ca, false);
    options.client_certificate_request =
        mode == ClientCerts::kRequire ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                      : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  } else {
    options.client_certificate_request = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  }
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const Files& files) {
  Validate(files);
  if (!files.verifies_peers()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadPem(files.ca, false);
  if (files.serves_tls()) {
    options.pem_private_key = ReadPem(files.key, true);
    options.pem_cert_chain = ReadPem(files.cert, false);
  }
  return grpc::SslCredentials(options);
}

bool PeerCertificateVerified(const grpc::ServerContextBase& context) {
  const auto auth = context.auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) return false;
  // The peer identity is set from a client certificate only when it verified.
  return !auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME).empty();
}

}  // namespace tidelane::tls
