#include "router/server/http_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <sstream>
#include <thread>

#include "router/proto/auth.h"

namespace tidelane::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

Response Reply(const Request& req, http::status status, std::string body,
               std::string content_type = "text/plain; charset=utf-8") {
  Response res{status, req.version()};
  res.set(http::field::server, "tidelane-router");
  res.set(http::field::content_type, content_type);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

// One connection: read a request, answer it, repeat while keep-alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, NodeTable& nodes, const std::string& token)
      : stream_(std::move(socket)), nodes_(nodes), token_(token) {}

  void Read() {
    req_ = {};
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, req_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return self->Close();
                       self->Write(self->Handle());
                     });
  }

 private:
  Response Handle() {
    if (req_.method() != http::verb::get) {
      return Reply(req_, http::status::method_not_allowed, "only GET is served here\n");
    }
    const auto target = req_.target();
    if (target == "/healthz") return Reply(req_, http::status::ok, "ok\n");
    if (target == "/metrics") {
      const auto header = req_[http::field::authorization];
      const std::string_view auth(header.data(), header.size());
      const std::string_view scheme = "Bearer ";
      if (auth.substr(0, scheme.size()) != scheme ||
          !auth::ConstantTimeEquals(
              std::string_view(auth.data() + scheme.size(), auth.size() - scheme.size()), token_)) {
        auto res = Reply(req_, http::status::unauthorized, "bearer token required\n");
        res.set(http::field::www_authenticate, "Bearer");
        return res;
      }
      std::uint64_t cursor = ~0ull;
      return Reply(req_, http::status::ok, RenderMetrics(nodes_.Snapshot(&cursor)),
                   "text/plain; version=0.0.4; charset=utf-8");
    }
    return Reply(req_, http::status::not_found, "no such endpoint\n");
  }

  void Write(Response res) {
    res_ = std::move(res);
    http::async_write(stream_, res_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec || !self->res_.keep_alive()) return self->Close();
                        self->Read();
                      });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  Request req_;
  Response res_;
  NodeTable& nodes_;
  const std::string& token_;
};

}  // namespace

struct HttpServer::Impl {
  NodeTable& nodes;
  std::string token;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::thread thread;

  void Accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec != asio::error::operation_aborted) spdlog::warn("http accept: {}", ec.message());
        if (!acceptor.is_open()) return;
      } else {
        std::make_shared<Session>(std::move(socket), nodes, token)->Read();
      }
      Accept();
    });
  }
};

HttpServer::HttpServer(NodeTable& nodes, std::string token)
    : impl_(new Impl{nodes, std::move(token)}) {}

HttpServer::~HttpServer() {
  Stop();
}

std::optional<std::string> HttpServer::Start(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    error_ = "address must be HOST:PORT";
    return std::nullopt;
  }
  try {
    const auto host = asio::ip::make_address(address.substr(0, colon));
    const auto port = static_cast<unsigned short>(std::stoi(address.substr(colon + 1)));
    const tcp::endpoint endpoint{host, port};
    impl_->acceptor.open(endpoint.protocol());
    impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
    impl_->acceptor.bind(endpoint);
    impl_->acceptor.listen();
  } catch (const std::exception& e) {
    error_ = e.what();
    return std::nullopt;
  }
  const auto bound = impl_->acceptor.local_endpoint();
  impl_->Accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
  return bound.address().to_string() + ":" + std::to_string(bound.port());
}

void HttpServer::Stop() {
  if (!impl_->thread.joinable()) return;
  asio::post(impl_->io, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  });
  impl_->io.stop();
  impl_->thread.join();
}

std::string RenderMetrics(const v1::ClusterSnapshot& s) {
  std::ostringstream out;
  const auto& c = s.counters();
  out << "# HELP tidelane_requests_total Requests by outcome since the router started.\n"
      << "# TYPE tidelane_requests_total counter\n"
      << "tidelane_requests_total{outcome=\"accepted\"} " << c.accepted() << "\n"
      << "tidelane_requests_total{outcome=\"served\"} " << c.served() << "\n"
      << "tidelane_requests_total{outcome=\"degraded\"} " << c.degraded() << "\n"
      << "tidelane_requests_total{outcome=\"rejected\"} " << c.rejected() << "\n"
      << "tidelane_requests_total{outcome=\"failed\"} " << c.failed() << "\n"
      << "# HELP tidelane_redirects_total Requests moved to another node mid-answer.\n"
      << "# TYPE tidelane_redirects_total counter\n"
      << "tidelane_redirects_total " << c.redirects() << "\n"
      << "# HELP tidelane_queue_length Requests waiting for admission.\n"
      << "# TYPE tidelane_queue_length gauge\n"
      << "tidelane_queue_length " << c.queued() << "\n"
      << "# HELP tidelane_in_flight Requests running on workers.\n"
      << "# TYPE tidelane_in_flight gauge\n"
      << "tidelane_in_flight " << c.in_flight() << "\n"
      << "# HELP tidelane_node_active_requests Requests running on each node.\n"
      << "# TYPE tidelane_node_active_requests gauge\n";
  for (const auto& n : s.nodes()) {
    out << "tidelane_node_active_requests{node=\"" << n.name() << "\"} " << n.active_requests()
        << "\n";
  }
  out << "# HELP tidelane_node_batch_occupancy Running sequences over max batch, per node.\n"
      << "# TYPE tidelane_node_batch_occupancy gauge\n";
  for (const auto& n : s.nodes()) {
    out << "tidelane_node_batch_occupancy{node=\"" << n.name() << "\"} "
        << n.saturation().batch_occupancy() << "\n";
  }
  return out.str();
}

}  // namespace tidelane::server
