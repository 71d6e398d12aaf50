#include "router/server/http_server.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast.hpp>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "router/proto/auth.h"
#include "router/receipt/receipt.h"
#include "router/server/openai_api.h"

namespace tidelane::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
// Over the connection's socket, which the connection keeps until its thread is joined.
using TlsStream = asio::ssl::stream<tcp::socket&>;

// The socket under a plain or TLS stream, for timeouts and for noticing a client that left.
tcp::socket& Lowest(tcp::socket& s) {
  return s;
}
tcp::socket& Lowest(TlsStream& s) {
  return s.next_layer();
}

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

std::int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "chatcmpl-" and 24 random hex digits, as OpenAI's ids look.
std::string NewCompletionId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[48];
  std::snprintf(buf, sizeof buf, "chatcmpl-%016llx%08x", static_cast<unsigned long long>(rng()),
                static_cast<unsigned>(rng()));
  return buf;
}

Response Reply(unsigned version, bool keep_alive, http::status status, std::string body,
               std::string_view content_type = "application/json") {
  Response res{status, version};
  res.set(http::field::server, "tidelane-router");
  res.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response ApiErrorReply(const Request& req, const openai::ApiError& e) {
  return Reply(req.version(), req.keep_alive(), static_cast<http::status>(e.http_status),
               openai::ErrorBody(e));
}

// Events of a non-streamed request, gathered until the end.
class CollectSink final : public EventSink {
 public:
  bool Send(const v1::ChatEvent& e) override {
    if (e.has_token()) text += e.token().text();
    if (e.has_done()) done = e.done();
    if (e.has_error()) error = e.error();
    return true;
  }
  bool Cancelled() const override { return false; }
  std::string text;
  std::optional<v1::Done> done;
  std::optional<v1::Error> error;
};

// Events of a streamed request, written as SSE in HTTP chunks as they come.
template <class Stream>
class SseSink final : public EventSink {
 public:
  SseSink(Stream& socket, const openai::ParsedRequest& req, std::string id)
      : socket_(socket), req_(req), id_(std::move(id)), created_(UnixNow()) {}

  bool Send(const v1::ChatEvent& e) override {
    switch (e.event_case()) {
      case v1::ChatEvent::kAccepted:
        return Write(": accepted queue_position=" + std::to_string(e.accepted().queue_position()) +
                     " eta_ms=" + std::to_string(e.accepted().eta_ms()) + "\n\n");
      case v1::ChatEvent::kRouted:
        return Write(": routed node=" + e.routed().node() + "\n\n");
      case v1::ChatEvent::kRedirected:
        return Write(": redirected from=" + e.redirected().from_node() +
                     " to=" + e.redirected().to_node() +
                     " resume_index=" + std::to_string(e.redirected().resume_index()) + "\n\n");
      case v1::ChatEvent::kDegraded:
        return Write(": degraded " + e.degraded().reason() + "\n\n");
      case v1::ChatEvent::kToken: {
        // The token's index rides along as an SSE comment, which OpenAI clients skip and
        // checkers (tidelane-surge) use to prove no token was lost or repeated.
        const bool ok = Write(
            ": index=" + std::to_string(e.token().index()) + "\ndata: " +
            openai::ChunkJson(id_, created_, req_.model, e.token().text(), first_, "") + "\n\n");
        first_ = false;
        return ok;
      }
      case v1::ChatEvent::kDone: {
        // Where the answer's signed receipt is (an extension; OpenAI clients skip comments).
        if (e.done().has_receipt() && !Write(": receipt /v1/receipts/" + id_ + "\n\n")) {
          return false;
        }
        bool ok = Data(
            openai::ChunkJson(id_, created_, req_.model, "", first_, e.done().finish_reason()));
        if (req_.include_usage)
          ok = ok && Data(openai::UsageChunkJson(id_, created_, req_.model, e.done().usage()));
        return ok && Write("data: [DONE]\n\n");
      }
      case v1::ChatEvent::kError:
        return Data(openai::ErrorBody(openai::FromChatError(e.error()))) &&
               Write("data: [DONE]\n\n");
      case v1::ChatEvent::EVENT_NOT_SET:
        return true;
    }
    return true;
  }

  // The client has gone when its side of the connection is closed (a TLS client's
  // close_notify is data, so ask the kernel about the hang-up rather than peeking a byte).
  bool Cancelled() const override {
    if (broken_) return true;
    pollfd p{Lowest(socket_).native_handle(), POLLRDHUP, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
  }

 private:
  bool Data(const std::string& json) { return Write("data: " + json + "\n\n"); }
  bool Write(const std::string& text) {
    if (broken_) return false;
    beast::error_code ec;
    asio::write(socket_, http::make_chunk(asio::buffer(text)), ec);
    broken_ = static_cast<bool>(ec);
    return !broken_;
  }

  Stream& socket_;
  const openai::ParsedRequest& req_;
  std::string id_;
  std::int64_t created_;
  bool first_ = true;
  bool broken_ = false;
};

}  // namespace

struct HttpServer::Impl {
  const RouterConfig& config;
  NodeTable& nodes;
  ChatPipeline& pipeline;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread accept_thread;
  std::atomic<bool> stopping{false};

  std::optional<asio::ssl::context> tls;  // set when the router serves HTTPS

  struct Connection {
    std::shared_ptr<tcp::socket> socket;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::mutex mu;
  std::list<Connection> connections;

  Impl(const RouterConfig& c, NodeTable& n, ChatPipeline& p) : config(c), nodes(n), pipeline(p) {}

  // The client token the request presented (see RouterConfig::client_tokens), if any.
  std::optional<std::size_t> Client(const Request& req) const {
    const auto header = req[http::field::authorization];
    return auth::MatchBearer(std::string_view(header.data(), header.size()), config.client_tokens);
  }

  v1::ListModelsResponse Models() {
    std::uint64_t cursor = ~0ull;
    const auto snapshot = nodes.Snapshot(&cursor);
    std::map<std::string, std::uint32_t> count;
    for (const auto& n : snapshot.nodes()) ++count[n.model()];
    v1::ListModelsResponse out;
    for (const auto& [id, k] : count) {
      auto* m = out.add_models();
      m->set_id(id);
      m->set_nodes(k);
    }
    return out;
  }

  void AcceptLoop() {
    while (!stopping) {
      auto socket = std::make_shared<tcp::socket>(io);
      beast::error_code ec;
      acceptor.accept(*socket, ec);
      if (ec) {
        if (stopping) return;
        spdlog::warn("http accept: {}", ec.message());
        continue;
      }
      std::lock_guard lock(mu);
      // Reap finished connections so the list stays as long as the live ones.
      for (auto it = connections.begin(); it != connections.end();) {
        if (it->done) {
          it->thread.join();
          it = connections.erase(it);
        } else {
          ++it;
        }
      }
      if (connections.size() >= kMaxConnections) {
        const auto res = Reply(
            11, false, http::status::service_unavailable,
            openai::ErrorBody({503, "server_error", "too many connections", {}, "overloaded"}));
        if (!tls) http::write(*socket, res, ec);  // a TLS client could not read it anyway
        continue;
      }
      auto& conn = connections.emplace_back();
      conn.socket = socket;
      conn.thread = std::thread([this, &conn] {
        tcp::socket& socket = *conn.socket;
        if (tls) {
          TlsStream stream(socket, *tls);
          // The handshake is bounded like an idle connection, so a silent client costs a
          // thread for a minute at most.
          timeval tv{60, 0};
          ::setsockopt(Lowest(stream).native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
          beast::error_code ec;
          stream.handshake(asio::ssl::stream_base::server, ec);
          if (!ec) {
            Serve(stream);
            stream.shutdown(ec);
          }
        } else {
          Serve(socket);
        }
        beast::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_both, ignored);
        conn.done = true;
      });
    }
  }

  template <class Stream>
  void Serve(Stream& socket) {
    // An idle connection is closed after 60 s without a request.
    timeval tv{60, 0};
    ::setsockopt(Lowest(socket).native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    beast::flat_buffer buffer;
    const openai::Limits limits{config.max_prompt_bytes * 2 + 4096, config.max_tokens_limit};
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(limits.max_body_bytes);
      parser.header_limit(64 * 1024);
      beast::error_code ec;
      http::read(socket, buffer, parser, ec);
      if (ec == http::error::body_limit) {
        const auto res = Reply(
            11, false, http::status::payload_too_large,
            openai::ErrorBody(
                {413, "invalid_request_error", "request body too large", {}, "request_too_large"}));
        http::write(socket, res, ec);
        // Read (and drop) what the client is still sending, up to a bound, so it gets to read
        // the answer instead of blocking on a full socket.
        Lowest(socket).shutdown(tcp::socket::shutdown_send, ec);
        timeval drain{2, 0};
        ::setsockopt(Lowest(socket).native_handle(), SOL_SOCKET, SO_RCVTIMEO, &drain, sizeof drain);
        std::array<char, 65536> sink;
        for (std::size_t total = 0; total < (64u << 20);) {
          const auto n = Lowest(socket).read_some(asio::buffer(sink), ec);
          if (ec) break;
          total += n;
        }
        return;
      }
      if (ec) return;  // closed, timed out or not HTTP
      const Request req = parser.release();
      if (!Handle(socket, req)) return;
      if (!req.keep_alive()) return;
    }
  }

  // Answers one request; false when the connection must close.
  template <class Stream>
  bool Handle(Stream& socket, const Request& req) {
    beast::error_code ec;
    const auto send = [&](const Response& res) {
      http::write(socket, res, ec);
      return !ec;
    };
    const std::string_view target(req.target().data(), req.target().size());
    if (target == "/healthz")
      return send(Reply(req.version(), req.keep_alive(), http::status::ok, "ok\n", "text/plain"));
    const auto client = Client(req);
    if (!client) {
      auto res = ApiErrorReply(req, {401,
                                     "invalid_request_error",
                                     "a valid 'Authorization: Bearer <token>' header is required",
                                     {},
                                     "invalid_api_key"});
      res.set(http::field::www_authenticate, "Bearer");
      return send(res);
    }
    if (target == "/metrics" && req.method() == http::verb::get) {
      std::uint64_t cursor = ~0ull;
      return send(Reply(req.version(), req.keep_alive(), http::status::ok,
                        RenderMetrics(nodes.Snapshot(&cursor), nodes.Latencies()),
                        "text/plain; version=0.0.4; charset=utf-8"));
    }
    if (target == "/v1/models" && req.method() == http::verb::get) {
      return send(Reply(req.version(), req.keep_alive(), http::status::ok,
                        openai::ModelsJson(Models(), UnixNow())));
    }
    if (constexpr std::string_view kReceipts = "/v1/receipts/";
        target.starts_with(kReceipts) && req.method() == http::verb::get) {
      return send(ReceiptReply(req, target.substr(kReceipts.size())));
    }
    if (target == "/v1/chat/completions") {
      if (req.method() != http::verb::post) {
        return send(ApiErrorReply(req, {405, "invalid_request_error", "use POST", {}, {}}));
      }
      if (const auto rate = pipeline.ChargeRate(config.client_tokens[*client]); !rate.allowed) {
        auto res = ApiErrorReply(req, {429,
                                       "requests",
                                       "rate limit reached for this token; retry after " +
                                           std::to_string(rate.retry_after.count()) + " ms",
                                       {},
                                       "rate_limit_exceeded"});
        // Whole seconds, rounded up, as the header requires.
        res.set(http::field::retry_after, std::to_string((rate.retry_after.count() + 999) / 1000));
        return send(res);
      }
      return ChatCompletions(socket, req);
    }
    return send(ApiErrorReply(
        req, {404, "invalid_request_error", "no such endpoint: " + std::string(target), {}, {}}));
  }

  // GET /v1/receipts/{id}: the countersigned receipt as the JSON document tidelane-verify reads.
  Response ReceiptReply(const Request& req, std::string_view id) {
    const auto not_found = [&] {
      return ApiErrorReply(req, {404, "invalid_request_error",
                                 "no receipt for request '" + std::string(id.substr(0, 128)) + "'",
                                 "id", "receipt_not_found"});
    };
    Ledger* ledger = pipeline.ledger();
    if (id.empty() || id.find_first_of("/?#") != std::string_view::npos || !ledger) {
      return not_found();
    }
    v1::Receipt r;
    switch (ledger->LoadReceipt(std::string(id), &r)) {
      case Ledger::Lookup::kNotFound:
        return not_found();
      case Ledger::Lookup::kError:
        spdlog::error("receipt {}: {}", id, ledger->LastError());
        return ApiErrorReply(req, {500, "server_error", "cannot read the receipt", {}, {}});
      case Ledger::Lookup::kFound:
        break;
    }
    try {
      return Reply(
          req.version(), req.keep_alive(), http::status::ok,
          receipt::ToJsonDocument({r.payload(), r.worker_signature(), r.worker_public_key(),
                                   r.router_signature(), r.router_public_key()}) +
              "\n");
    } catch (const std::exception& e) {
      spdlog::error("receipt {} in the ledger is unreadable: {}", id, e.what());
      return ApiErrorReply(req, {500, "server_error", "the stored receipt is unreadable", {}, {}});
    }
  }

  template <class Stream>
  bool ChatCompletions(Stream& socket, const Request& req) {
    beast::error_code ec;
    auto parsed = openai::ParseChatRequest(
        req.body(), {config.max_prompt_bytes * 2 + 4096, config.max_tokens_limit});
    if (const auto* e = std::get_if<openai::ApiError>(&parsed)) {
      http::write(socket, ApiErrorReply(req, *e), ec);
      return !ec;
    }
    auto& p = std::get<openai::ParsedRequest>(parsed);
    if (const auto problem = pipeline.Problem(p.request); !problem.empty()) {
      http::write(socket,
                  ApiErrorReply(req, {400, "invalid_request_error", problem, "messages", {}}), ec);
      return !ec;
    }
    const auto models = Models();
    if (models.models_size() > 0) {
      bool known = false;
      for (const auto& m : models.models()) known = known || m.id() == p.model;
      if (!known) {
        http::write(socket,
                    ApiErrorReply(req, {404, "invalid_request_error",
                                        "the model '" + p.model + "' does not exist on this router",
                                        "model", "model_not_found"}),
                    ec);
        return !ec;
      }
    }
    const std::string id = NewCompletionId();
    p.request.set_request_id(id);

    if (!p.stream) {
      CollectSink sink;
      const auto status = pipeline.Run(p.request, sink);
      if (!status.ok()) {
        http::write(socket,
                    ApiErrorReply(
                        req, {status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? 400 : 500,
                              "invalid_request_error",
                              status.error_message(),
                              {},
                              {}}),
                    ec);
        return !ec;
      }
      if (sink.error || !sink.done) {
        const auto e =
            sink.error ? openai::FromChatError(*sink.error)
                       : openai::ApiError{500, "server_error", "the answer ended early", {}, {}};
        http::write(socket, ApiErrorReply(req, e), ec);
        return !ec;
      }
      std::string body = openai::CompletionJson(id, UnixNow(), p.model, sink.text,
                                                sink.done->finish_reason(), sink.done->usage());
      if (sink.done->has_receipt()) {
        // An extension field (OpenAI clients ignore unknown fields): where the receipt is.
        auto j = nlohmann::json::parse(body);
        j["tidelane_receipt"] = "/v1/receipts/" + id;
        body = j.dump();
      }
      http::write(socket, Reply(req.version(), req.keep_alive(), http::status::ok, std::move(body)),
                  ec);
      return !ec;
    }

    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "tidelane-router");
    res.set(http::field::content_type, "text/event-stream");
    res.set(http::field::cache_control, "no-cache");
    res.keep_alive(req.keep_alive());
    res.chunked(true);
    http::response_serializer<http::empty_body> header{res};
    http::write_header(socket, header, ec);
    if (ec) return false;
    SseSink<Stream> sink(socket, p, id);
    pipeline.Run(p.request, sink);
    asio::write(socket, http::make_chunk_last(), ec);
    return !ec;
  }
};

HttpServer::HttpServer(const RouterConfig& config, NodeTable& nodes, ChatPipeline& pipeline)
    : impl_(std::make_unique<Impl>(config, nodes, pipeline)) {}

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
    if (impl_->config.tls.serves_tls()) {
      // TLS 1.2 and 1.3 only, with the certificate and key the gRPC listener uses.
      auto& ctx = impl_->tls.emplace(asio::ssl::context::tls_server);
      ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
      ctx.use_certificate_chain_file(impl_->config.tls.cert.string());
      ctx.use_private_key_file(impl_->config.tls.key.string(), asio::ssl::context::pem);
    }
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
  impl_->accept_thread = std::thread([this] { impl_->AcceptLoop(); });
  return bound.address().to_string() + ":" + std::to_string(bound.port());
}

void HttpServer::Stop() {
  if (!impl_->accept_thread.joinable()) return;
  impl_->stopping = true;
  beast::error_code ec;
  impl_->acceptor.cancel(ec);
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);  // wakes the blocking accept
  impl_->acceptor.close(ec);
  impl_->accept_thread.join();
  std::lock_guard lock(impl_->mu);
  for (auto& c : impl_->connections) {
    c.socket->shutdown(tcp::socket::shutdown_both, ec);  // wakes its thread's blocking read
  }
  for (auto& c : impl_->connections) {
    if (c.thread.joinable()) c.thread.join();
  }
  impl_->connections.clear();
}

namespace {

void RenderHistogram(std::ostringstream& out, const std::string& name, const std::string& help,
                     const Histogram& h) {
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.bounds.size(); ++i) {
    cumulative += h.counts[i];
    out << name << "_bucket{le=\"" << h.bounds[i] << "\"} " << cumulative << "\n";
  }
  out << name << "_bucket{le=\"+Inf\"} " << h.count << "\n";
  out << name << "_sum " << h.sum << "\n" << name << "_count " << h.count << "\n";
}

}  // namespace

std::string RenderMetrics(const v1::ClusterSnapshot& s, const LatencyHistograms& latencies) {
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
  RenderHistogram(out, "tidelane_ttft_seconds",
                  "Time from acceptance to the first token of served requests.", latencies.ttft_s);
  RenderHistogram(out, "tidelane_tpot_seconds",
                  "Mean time per output token after the first, per served request.",
                  latencies.tpot_s);
  return out.str();
}

}  // namespace tidelane::server
