// HttpConnection: one client's HTTP/1.1 connection (plaintext or TLS) on the HTTP server's
// io_context, driven by asynchronous reads and writes — no thread of its own, so ten thousand
// clients waiting in line cost sockets and buffers, not threads.
//
// A connection reads one request, hands it to its RequestHandler, and reads the next only once
// the response has been written in full (HTTP/1.1 without pipelining out of order). The handler
// answers at once or later, from any thread, by queueing bytes with Send; a streamed response
// (server-sent events) is many Sends, the last one marked End::kResponse.
//
// Threading: Send, Gone and Abort are thread-safe. Reads, writes and the close run on the
// connection's strand. The connection lives while its socket has operations pending or someone
// (a chat request in the pipeline) holds its shared_ptr; the handler's OnClosed runs from its
// destructor.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <memory>
#include <string>

namespace tidelane::server {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

class HttpConnection {
 public:
  virtual ~HttpConnection() = default;

  enum class End {
    kMore,            // more of this response follows
    kResponse,        // this ends the response; read the next request
    kClose,           // this ends the response and the connection
    kCloseAfterDrain  // as kClose, after reading (and dropping) what the client still sends,
                      // so that a client blocked writing an oversized body reads the answer
  };
  // Queues bytes for the client. False, queueing nothing, when the connection has failed, was
  // closed, or holds more than kMaxQueuedBytes unwritten (a client that stopped reading: the
  // connection is then closed).
  virtual bool Send(std::string bytes, End end) = 0;
  // True once the client has hung up or the connection failed or closed.
  virtual bool Gone() const = 0;
  // Closes the connection soon (server shutdown); later Sends fail.
  virtual void Abort() = 0;

  static constexpr std::size_t kMaxQueuedBytes = 4u << 20;
};

// What a connection asks of the server.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // A complete request. Answer through `connection` (now or later, from any thread).
  virtual void OnRequest(const std::shared_ptr<HttpConnection>& connection,
                         HttpRequest request) = 0;
  // The request body passed `BodyLimit`: answer with a 413 ending in End::kCloseAfterDrain.
  virtual void OnBodyTooLarge(const std::shared_ptr<HttpConnection>& connection) = 0;
  virtual std::size_t BodyLimit() const = 0;
  // The connection is gone (its destructor); called exactly once per started connection.
  virtual void OnClosed(HttpConnection* connection) = 0;
};

// Starts serving an accepted socket (its executor must be a strand of the server's
// io_context). `tls` null: plaintext; else the TLS handshake comes first. `handler` must
// outlive every connection. Returns the connection, already reading.
std::shared_ptr<HttpConnection> StartHttpConnection(boost::asio::ip::tcp::socket socket,
                                                    boost::asio::ssl::context* tls,
                                                    RequestHandler& handler);

}  // namespace tidelane::server
