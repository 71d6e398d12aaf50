// OpenAiChatBackend: ui::ChatBackend over any OpenAI-compatible HTTP endpoint (a llama.cpp
// server, vLLM, Ollama, a hosted API, or a Tidelane router's HTTP API), with
// QNetworkAccessManager.
//
// Each send() (after GET {base}/v1/models when no model is set, to take the first) POSTs
// {base}/v1/chat/completions with "stream": true and reads the server-sent events as they arrive:
// `data: {chunk}` lines give the tokens (index counted here), `data: [DONE]` ends the answer, a
// `data: {"error": ...}` object fails it. The comment lines a Tidelane router adds are optional
// and, when present, feed the routing trace: `: accepted queue_position=N eta_ms=M`, `: routed
// node=X`,
// `: redirected from=A to=B ...`, `: degraded REASON`, `: index=N` (the next token's index).
// Timings in the summary are measured here (TTFT, total, tokens/s); queue wait is unknown.
// Receipts: a Tidelane router names the answer's signed receipt in a comment before [DONE]
// (`: receipt /v1/receipts/{id}`); the receipt is then fetched (GET, same key) before finished()
// is emitted, and carried in AnswerSummary::receiptJson as the gRPC backend does, so the badge
// shows for HTTP answers too. A stream without that comment (any other server) has no receipt
// and no error; a receipt that cannot be fetched is logged and the answer finishes without it.
//
// Errors say what to do and never drop what was shown: an unreachable endpoint ("Cannot
// reach ..."), a refused key (HTTP 401/403: "The endpoint refused the API key ..."), any
// other HTTP error with the server's message, a malformed stream, or a stream that ends
// without [DONE] emit failed(); tokens already emitted stay with the answer.
//
// Secrets: the API key is held in memory only and is never logged; the Authorization
// header is the only place it goes.
//
// Threading: GUI thread only (QNetworkAccessManager is asynchronous; no threads here).
#pragma once

#include <QElapsedTimer>
#include <QHash>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkRequest>
#include <QPointer>
#include <QUrl>
#include <memory>

#include "ui/chat_backend.h"

class QNetworkReply;

namespace tidelane::app {

class OpenAiChatBackend : public ui::ChatBackend {
  Q_OBJECT

 public:
  // No answer data for this long fails the request (a surge sends comments meanwhile).
  static constexpr int kTransferTimeoutMs = 120000;
  // The receipt is already in the router's ledger when it names it: a fetch that takes longer
  // than this gives up (the answer finishes without a badge) rather than hold the answer.
  static constexpr int kReceiptTimeoutMs = 10000;

  explicit OpenAiChatBackend(QObject* parent = nullptr);
  ~OpenAiChatBackend() override;

  // `base`: the endpoint's root (http://host:port, with or without a trailing /v1);
  // `model`: sent as "model" (empty: the first of GET /v1/models, else "default"). An invalid URL
  // makes the backend not ready.
  void setEndpoint(const QUrl& base, const QString& apiKey, const QString& model = {});
  QUrl completionsUrl() const;

  bool isReady() const override { return base_.isValid() && !base_.host().isEmpty(); }
  QString describe() const override;
  QString send(const QList<ui::ChatTurn>& conversation, int maxTokens) override;
  // Sends "model" (else the endpoint's), "temperature", "top_p" and "max_tokens" when set.
  QString sendWith(const QList<ui::ChatTurn>& conversation,
                   const ui::GenerationOptions& options) override;
  // GET {base}/v1/models.
  void requestModels() override;
  void cancel(const QString& id) override;

 private:
  struct Call {
    QPointer<QNetworkReply> reply;
    QJsonObject body;   // the request; "model" is added once known
    QByteArray buffer;  // bytes not yet split into lines
    QByteArray data;    // `data:` lines of the event being read
    int nextIndex = 0;  // index of the next token
    int tokens = 0;
    QElapsedTimer clock;
    double ttftMs = -1;
    QString finishReason;
    int promptTokens = 0;
    int completionTokens = 0;
    bool ended = false;  // finished or failed was emitted (or is waiting for the receipt)
    bool cancelled = false;
    QString receiptId;  // from `: receipt /v1/receipts/{id}`; empty: no receipt announced
  };
  QNetworkRequest request(const QUrl& url) const;
  void post(const QString& id, const QString& model);
  void onReadyRead(const QString& id);
  void onFinished(const QString& id);
  void handleLine(const QString& id, Call& call, const QByteArray& line);
  void handleComment(const QString& id, Call& call, const QByteArray& comment);
  void handleData(const QString& id, Call& call, const QByteArray& data);
  void fail(const QString& id, Call& call, const QString& message);
  // GET {base}/v1/receipts/{receiptId}, then finished(id, summary) with it.
  void finishWithReceipt(const QString& id, const QString& receiptId, ui::AnswerSummary summary);
  QUrl apiUrl(const QString& path) const;  // {base}/v1/{path}
  QString httpError(QNetworkReply* reply, const QByteArray& body) const;
  // Why `reply` failed, for the user (empty: it did not).
  QString failure(QNetworkReply* reply, QByteArray body, bool midStream) const;

  QNetworkAccessManager network_;
  QUrl base_;
  QString apiKey_;
  QString model_;
  QHash<QString, std::shared_ptr<Call>> calls_;  // shared: signals may re-enter send()
};

}  // namespace tidelane::app
