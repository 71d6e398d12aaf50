#include "router/server/http_server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <unordered_map>

#include "router/proto/auth.h"
#include "router/receipt/receipt.h"
#include "router/server/http_connection.h"
#include "router/server/openai_api.h"
#include "router/server/thread_name.h"

namespace tidelane::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using End = HttpConnection::End;

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

Response ApiErrorReply(const HttpRequest& req, const openai::ApiError& e) {
  return Reply(req.version(), req.keep_alive(), static_cast<http::status>(e.http_status),
               openai::ErrorBody(e));
}

// The response on the wire, and whether the connection stays open after it.
void SendResponse(HttpConnection& connection, const Response& res) {
  std::ostringstream wire;
  wire << res;
  connection.Send(std::move(wire).str(), res.keep_alive() ? End::kResponse : End::kClose);
}

// One chunk of a chunked body (RFC 9112 section 7.1): size in hex, CRLF, data, CRLF.
std::string Chunk(std::string_view data) {
  char size[20];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out(size);
  out.append(data).append("\r\n");
  return out;
}

// A non-streamed request: events are gathered, and the whole answer goes out at Close.
class CollectStream final : public StreamSink {
 public:
  CollectStream(std::shared_ptr<HttpConnection> connection, HttpRequest request, std::string id,
                std::string model)
      : connection_(std::move(connection)),
        request_(std::move(request)),
        id_(std::move(id)),
        model_(std::move(model)) {}

  bool Send(const v1::ChatEvent& e) override {
    if (e.has_token()) text_ += e.token().text();
    if (e.has_done()) done_ = e.done();
    if (e.has_error()) error_ = e.error();
    return !connection_->Gone();
  }
  bool Cancelled() const override { return connection_->Gone(); }

  void Close(const grpc::Status& status) override {
    if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
      return SendResponse(
          *connection_,
          ApiErrorReply(request_,
                        {status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? 400 : 500,
                         "invalid_request_error",
                         status.error_message(),
                         {},
                         {}}));
    }
    if (error_ || !done_) {
      const auto e = error_
                         ? openai::FromChatError(*error_)
                         : openai::ApiError{500, "server_error", "the answer ended early", {}, {}};
      return SendResponse(*connection_, ApiErrorReply(request_, e));
    }
    std::string body = openai::CompletionJson(id_, UnixNow(), model_, text_, done_->finish_reason(),
                                              done_->usage());
    if (done_->has_receipt()) {
      // An extension field (OpenAI clients ignore unknown fields): where the receipt is.
      auto j = nlohmann::json::parse(body);
      j["tidelane_receipt"] = "/v1/receipts/" + id_;
      body = j.dump();
    }
    SendResponse(*connection_, Reply(request_.version(), request_.keep_alive(), http::status::ok,
                                     std::move(body)));
  }

 private:
  std::shared_ptr<HttpConnection> connection_;
  HttpRequest request_;
  std::string id_;
  std::string model_;
  std::string text_;
  std::optional<v1::Done> done_;
  std::optional<v1::Error> error_;
};

// A streamed request: each event goes out at once as server-sent events in HTTP chunks.
class SseStream final : public StreamSink {
 public:
  SseStream(std::shared_ptr<HttpConnection> connection, const openai::ParsedRequest& req,
            std::string id, bool keep_alive)
      : connection_(std::move(connection)),
        model_(req.model),
        include_usage_(req.include_usage),
        id_(std::move(id)),
        created_(UnixNow()),
        keep_alive_(keep_alive) {}

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
        const bool ok =
            Write(": index=" + std::to_string(e.token().index()) + "\ndata: " +
                  openai::ChunkJson(id_, created_, model_, e.token().text(), first_, "") + "\n\n");
        first_ = false;
        return ok;
      }
      case v1::ChatEvent::kDone: {
        std::string out;
        // Where the answer's signed receipt is (an extension; OpenAI clients skip comments).
        if (e.done().has_receipt()) out += ": receipt /v1/receipts/" + id_ + "\n\n";
        out += Data(openai::ChunkJson(id_, created_, model_, "", first_, e.done().finish_reason()));
        if (include_usage_)
          out += Data(openai::UsageChunkJson(id_, created_, model_, e.done().usage()));
        return Write(out + "data: [DONE]\n\n");
      }
      case v1::ChatEvent::kError:
        return Write(Data(openai::ErrorBody(openai::FromChatError(e.error()))) +
                     "data: [DONE]\n\n");
      case v1::ChatEvent::EVENT_NOT_SET:
        return true;
    }
    return true;
  }
  bool Cancelled() const override { return connection_->Gone(); }
  void Close(const grpc::Status&) override {
    // The last chunk ends the body whatever happened: an error was already sent as an event.
    connection_->Send("0\r\n\r\n", keep_alive_ ? End::kResponse : End::kClose);
  }

 private:
  static std::string Data(const std::string& json) { return "data: " + json + "\n\n"; }
  bool Write(const std::string& text) { return connection_->Send(Chunk(text), End::kMore); }

  std::shared_ptr<HttpConnection> connection_;
  std::string model_;
  bool include_usage_;
  std::string id_;
  std::int64_t created_;
  bool keep_alive_;
  bool first_ = true;
};

}  // namespace

struct HttpServer::Impl final : RequestHandler {
  const RouterConfig& config;
  NodeTable& nodes;
  ChatPipeline& pipeline;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  tcp::acceptor acceptor{asio::make_strand(io)};
  asio::steady_timer accept_retry{acceptor.get_executor()};
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};

  std::optional<asio::ssl::context> tls;  // set when the router serves HTTPS

  // Every live connection, for Stop and the connection cap.
  std::mutex mu;
  std::condition_variable all_closed;
  std::unordered_map<HttpConnection*, std::weak_ptr<HttpConnection>> connections;

  Impl(const RouterConfig& c, NodeTable& n, ChatPipeline& p) : config(c), nodes(n), pipeline(p) {}

  // The client token the request presented (see RouterConfig::client_tokens), if any.
  std::optional<std::size_t> Client(const HttpRequest& req) const {
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

  void Accept() {
    acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (stopping) return;
      if (ec) {
        // Out of descriptors (EMFILE) or a connection reset before accept: try again shortly
        // rather than spin.
        spdlog::warn("http accept: {}", ec.message());
        accept_retry.expires_after(std::chrono::milliseconds(100));
        accept_retry.async_wait([this](beast::error_code) {
          if (!stopping) Accept();
        });
        return;
      }
      Admit(std::move(socket));
      Accept();
    });
  }

  void Admit(tcp::socket socket) {
    std::unique_lock lock(mu);
    if (connections.size() >= kMaxConnections) {
      if (!tls) {
        // Best effort and never blocking: a plaintext client learns why; a TLS one could not
        // read it before a handshake anyway.
        std::ostringstream wire;
        wire << Reply(
            11, false, http::status::service_unavailable,
            openai::ErrorBody({503, "server_error", "too many connections", {}, "overloaded"}));
        beast::error_code ec;
        socket.non_blocking(true, ec);
        socket.write_some(asio::buffer(wire.str()), ec);
      }
      return;
    }
    lock.unlock();
    // `connection` keeps it alive until it is registered, and lets go after `mu` is released:
    // the last reference dropping runs OnClosed, which takes `mu`.
    auto connection = StartHttpConnection(std::move(socket), tls ? &*tls : nullptr, *this);
    lock.lock();
    connections.emplace(connection.get(), connection);
    lock.unlock();
  }

  // RequestHandler.
  std::size_t BodyLimit() const override { return config.max_prompt_bytes * 2 + 4096; }

  void OnClosed(HttpConnection* connection) override {
    std::lock_guard lock(mu);
    connections.erase(connection);
    if (connections.empty()) all_closed.notify_all();
  }

  void OnBodyTooLarge(const std::shared_ptr<HttpConnection>& connection) override {
    std::ostringstream wire;
    wire << Reply(
        11, false, http::status::payload_too_large,
        openai::ErrorBody(
            {413, "invalid_request_error", "request body too large", {}, "request_too_large"}));
    connection->Send(std::move(wire).str(), End::kCloseAfterDrain);
  }

  void OnRequest(const std::shared_ptr<HttpConnection>& connection, HttpRequest req) override {
    const auto send = [&](const Response& res) { SendResponse(*connection, res); };
    const std::string target(req.target().data(), req.target().size());
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
                        RenderMetrics(nodes.Snapshot(&cursor), nodes.Latencies(), pipeline.ledger()),
                        "text/plain; version=0.0.4; charset=utf-8"));
    }
    if (target == "/v1/models" && req.method() == http::verb::get) {
      return send(Reply(req.version(), req.keep_alive(), http::status::ok,
                        openai::ModelsJson(Models(), UnixNow())));
    }
    if (constexpr std::string_view kReceipts = "/v1/receipts/";
        target.starts_with(kReceipts) && req.method() == http::verb::get) {
      return send(ReceiptReply(req, std::string_view(target).substr(kReceipts.size()),
                               Caller::ForClient(config, *client)));
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
      return ChatCompletions(connection, std::move(req), Caller::ForClient(config, *client));
    }
    send(ApiErrorReply(req, {404, "invalid_request_error", "no such endpoint: " + target, {}, {}}));
  }

  // GET /v1/receipts/{id}: the countersigned receipt as the JSON document tidelane-verify reads.
  // Served to the credential that made the request and to the router's token; anyone else
  // gets the very 404 an unknown id gets, so it cannot tell the request exists.
  Response ReceiptReply(const HttpRequest& req, std::string_view id, const Caller& caller) {
    const auto not_found = [&] {
      return ApiErrorReply(req, {404, "invalid_request_error",
                                 "no receipt for request '" + std::string(id.substr(0, 128)) + "'",
                                 "id", "receipt_not_found"});
    };
    Ledger* ledger = pipeline.ledger();
    if (id.empty() || id.find_first_of("/?#") != std::string_view::npos || !ledger) {
      return not_found();
    }
    std::optional<std::string> owner;
    switch (ledger->LoadOwner(std::string(id), &owner)) {
      case Ledger::Lookup::kNotFound:
        // A receipt always has its request's row; without one, no owner is known: only the
        // router's token may read it.
        if (!caller.admin) return not_found();
        break;
      case Ledger::Lookup::kError:
        spdlog::error("receipt {}: {}", id, ledger->LastError());
        return ApiErrorReply(req, {500, "server_error", "cannot read the receipt", {}, {}});
      case Ledger::Lookup::kFound:
        if (!caller.MayRead(owner)) return not_found();
        break;
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

  // POST /v1/chat/completions: checked here, then started on the pipeline, which answers
  // through the connection from its own threads (a queued request holds no thread at all).
  // The request belongs to `caller`'s credential.
  void ChatCompletions(const std::shared_ptr<HttpConnection>& connection, HttpRequest req,
                       const Caller& caller) {
    auto parsed = openai::ParseChatRequest(req.body(), {BodyLimit(), config.max_tokens_limit});
    if (const auto* e = std::get_if<openai::ApiError>(&parsed)) {
      return SendResponse(*connection, ApiErrorReply(req, *e));
    }
    auto& p = std::get<openai::ParsedRequest>(parsed);
    if (const auto problem = pipeline.Problem(p.request); !problem.empty()) {
      return SendResponse(
          *connection, ApiErrorReply(req, {400, "invalid_request_error", problem, "messages", {}}));
    }
    const auto models = Models();
    if (models.models_size() > 0) {
      bool known = false;
      for (const auto& m : models.models()) known = known || m.id() == p.model;
      if (!known) {
        return SendResponse(*connection, ApiErrorReply(req, {404, "invalid_request_error",
                                                             "the model '" + p.model +
                                                                 "' does not exist on this router",
                                                             "model", "model_not_found"}));
      }
    }
    const std::string id = NewCompletionId();
    p.request.set_request_id(id);

    if (!p.stream) {
      const std::string model = p.model;
      req.body().clear();  // kept only for its version and keep-alive
      pipeline.Start(p.request,
                     std::make_shared<CollectStream>(connection, std::move(req), id, model),
                     caller);
      return;
    }
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "tidelane-router");
    res.set(http::field::content_type, "text/event-stream");
    res.set(http::field::cache_control, "no-cache");
    res.keep_alive(req.keep_alive());
    res.chunked(true);
    std::ostringstream header;
    header << res.base();
    if (!connection->Send(std::move(header).str(), End::kMore)) return;
    pipeline.Start(p.request, std::make_shared<SseStream>(connection, p, id, req.keep_alive()),
                   caller);
  }
};

HttpServer::HttpServer(const RouterConfig& config, NodeTable& nodes, ChatPipeline& pipeline)
    : impl_(std::make_unique<Impl>(config, nodes, pipeline)) {}

HttpServer::~HttpServer() {
  Stop();
}

std::optional<std::string> HttpServer::Start(const std::string& address, int threads) {
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
    impl_->acceptor.listen(asio::socket_base::max_listen_connections);
  } catch (const std::exception& e) {
    error_ = e.what();
    return std::nullopt;
  }
  const auto bound = impl_->acceptor.local_endpoint();
  impl_->work.emplace(impl_->io.get_executor());
  impl_->Accept();
  for (int i = 0; i < std::max(1, threads); ++i) {
    impl_->threads.emplace_back([this] {
      NameThisThread("tl-http");
      impl_->io.run();
    });
  }
  return bound.address().to_string() + ":" + std::to_string(bound.port());
}

void HttpServer::Stop() {
  if (impl_->threads.empty()) return;
  impl_->stopping = true;
  asio::post(impl_->acceptor.get_executor(), [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
    impl_->accept_retry.cancel();
  });
  // A connection ends once its socket operations complete and the pipeline lets go of its
  // request (the pipeline sees the connection gone and stops the work).
  const auto abort_all = [this] {
    std::vector<std::shared_ptr<HttpConnection>> live;
    {
      std::lock_guard lock(impl_->mu);
      for (auto& [raw, weak] : impl_->connections) {
        if (auto c = weak.lock()) live.push_back(std::move(c));
      }
    }
    for (auto& c : live) c->Abort();
    // `live` lets go here, outside `mu` (a connection's end takes it).
  };
  abort_all();
  std::unique_lock lock(impl_->mu);
  while (!impl_->all_closed.wait_for(lock, std::chrono::seconds(5),
                                     [&] { return impl_->connections.empty(); })) {
    spdlog::warn("http: waiting for {} connections to close", impl_->connections.size());
    lock.unlock();
    abort_all();
    lock.lock();
  }
  lock.unlock();
  impl_->work.reset();
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace tidelane::server
