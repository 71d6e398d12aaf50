#include "router/server/http_connection.h"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>

namespace tidelane::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// A connection without a request for this long is closed; so is one whose client does not
// take a write for as long (it has stopped reading).
constexpr auto kIdleTimeout = 60s;
constexpr auto kHandshakeTimeout = 30s;
// After a 413, what the client still sends is read and dropped up to these bounds.
constexpr auto kDrainTimeout = 2s;
constexpr std::size_t kDrainBytes = 64u << 20;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

template <class Stream>
class Session final : public HttpConnection, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(tcp::socket socket, asio::ssl::context* tls, RequestHandler& handler)
      : stream_(MakeStream(std::move(socket), tls)), handler_(handler) {}

  ~Session() override { handler_.OnClosed(this); }

  void Start() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      beast::get_lowest_layer(stream_).expires_after(kHandshakeTimeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->Fail();
                                self->Read();
                              });
    } else {
      asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->Read(); });
    }
  }

  bool Send(std::string bytes, End end) override {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    queued_bytes_ += bytes.size();
    if (queued_bytes_ > kMaxQueuedBytes) {
      // A client that reads nothing while its answer streams would otherwise grow this queue
      // without bound; it is treated as gone.
      spdlog::warn("http: a client stopped reading ({} bytes unwritten); closing it",
                   queued_bytes_);
      closed_ = true;
      queue_.clear();
      asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->Close(); });
      return false;
    }
    queue_.push_back({std::move(bytes), end});
    if (!writing_) {
      writing_ = true;
      asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->Write(); });
    }
    return true;
  }

  bool Gone() const override {
    // Held while polling, so the strand cannot close (and the kernel reuse) the descriptor in
    // between. The kernel tells a hang-up apart from data, which a TLS close_notify is.
    std::lock_guard lock(mu_);
    if (closed_) return true;
    pollfd p{const_cast<Session*>(this)->Lowest().socket().native_handle(), POLLRDHUP, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
  }

  void Abort() override {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      queue_.clear();
    }
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->Close(); });
  }

 private:
  struct Pending {
    std::string bytes;
    End end;
  };

  static Stream MakeStream(tcp::socket socket, asio::ssl::context* tls) {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      return Stream(std::move(socket), *tls);
    } else {
      return Stream(std::move(socket));
    }
  }
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  void Read() {
    if (IsClosed()) return Close();
    parser_.emplace();
    parser_->body_limit(handler_.BodyLimit());
    parser_->header_limit(64 * 1024);
    Lowest().expires_after(kIdleTimeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::body_limit) return handler_.OnBodyTooLarge(this->shared_from_this());
    if (ec) return Close();  // closed, timed out or not HTTP
    Lowest().expires_never();
    handler_.OnRequest(this->shared_from_this(), parser_->release());
  }

  // On the strand: writes everything queued so far in one go, then carries on with what the
  // last piece said.
  void Write() {
    End end = End::kMore;
    {
      std::lock_guard lock(mu_);
      if (closed_ || queue_.empty()) {
        writing_ = false;
        return;
      }
      out_.clear();
      while (!queue_.empty() && end == End::kMore) {
        out_ += queue_.front().bytes;
        end = queue_.front().end;
        queue_.pop_front();
      }
    }
    Lowest().expires_after(kIdleTimeout);
    asio::async_write(stream_, asio::buffer(out_),
                      [self = this->shared_from_this(), end](beast::error_code ec, std::size_t n) {
                        self->OnWrite(ec, n, end);
                      });
  }

  void OnWrite(beast::error_code ec, std::size_t written, End end) {
    if (ec) return Fail();
    Lowest().expires_never();
    {
      std::lock_guard lock(mu_);
      queued_bytes_ -= std::min(queued_bytes_, written);
    }
    switch (end) {
      case End::kMore:
        return Write();
      case End::kResponse: {
        std::lock_guard lock(mu_);
        writing_ = false;
        // A handler sends nothing after a response's end until the next request, which this
        // read brings.
        asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->Read(); });
        return;
      }
      case End::kClose:
        return Close();
      case End::kCloseAfterDrain:
        return Drain();
    }
  }

  void Drain() {
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    Lowest().expires_after(kDrainTimeout);
    DrainSome();
  }
  void DrainSome() {
    if (!scratch_) scratch_ = std::make_unique<std::array<char, 65536>>();
    Lowest().async_read_some(asio::buffer(*scratch_), [self = this->shared_from_this()](
                                                          beast::error_code ec, std::size_t n) {
      self->drained_ += n;
      if (ec || self->drained_ >= kDrainBytes) return self->CloseSocket();
      self->DrainSome();
    });
  }

  bool IsClosed() const {
    std::lock_guard lock(mu_);
    return closed_;
  }

  void Fail() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      queue_.clear();
    }
    CloseSocket();
  }

  // On the strand: an orderly end (TLS close_notify first, bounded), then the socket.
  void Close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      queue_.clear();
    }
    if (shutting_down_) return;
    shutting_down_ = true;
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      Lowest().expires_after(5s);
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->CloseSocket(); });
    } else {
      CloseSocket();
    }
  }

  void CloseSocket() {
    std::lock_guard lock(mu_);  // Gone() may be polling the descriptor
    closed_ = true;
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
  }

  Stream stream_;
  RequestHandler& handler_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string out_;  // being written
  // Only for draining after a 413: a buffer this size in every connection would cost 640 MB
  // at ten thousand clients.
  std::unique_ptr<std::array<char, 65536>> scratch_;
  std::size_t drained_ = 0;
  bool shutting_down_ = false;  // strand only

  mutable std::mutex mu_;
  std::deque<Pending> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closed_ = false;
};

}  // namespace

std::shared_ptr<HttpConnection> StartHttpConnection(tcp::socket socket, asio::ssl::context* tls,
                                                    RequestHandler& handler) {
  if (tls) {
    auto session = std::make_shared<Session<TlsStream>>(std::move(socket), tls, handler);
    session->Start();
    return session;
  }
  auto session = std::make_shared<Session<PlainStream>>(std::move(socket), nullptr, handler);
  session->Start();
  return session;
}

}  // namespace tidelane::server
