#include "app/openai_chat_backend.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QRegularExpression>
#include <QUuid>

namespace tidelane::app {
namespace {

// `key=value` out of a comment such as "accepted queue_position=3 eta_ms=900".
QByteArray field(const QByteArray& comment, const QByteArray& key) {
  for (const QByteArray& part : comment.split(' ')) {
    if (part.startsWith(key + '=')) return part.mid(key.size() + 1);
  }
  return {};
}

int httpStatus(QNetworkReply* reply) {
  return reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
}

}  // namespace

OpenAiChatBackend::OpenAiChatBackend(QObject* parent) : ui::ChatBackend(parent) {}

OpenAiChatBackend::~OpenAiChatBackend() {
  // No signal after this: the replies (answers, model lists, receipts) go with network_,
  // disconnected first.
  for (QNetworkReply* reply : network_.findChildren<QNetworkReply*>()) {
    reply->disconnect(this);
    reply->abort();
  }
}

void OpenAiChatBackend::setEndpoint(const QUrl& base, const QString& apiKey, const QString& model) {
  base_ = base;
  apiKey_ = apiKey;
  model_ = model;
  emit readyChanged(isReady());
}

QUrl OpenAiChatBackend::completionsUrl() const {
  return apiUrl(QStringLiteral("chat/completions"));
}

QUrl OpenAiChatBackend::apiUrl(const QString& path) const {
  QUrl url = base_;
  QString prefix = url.path();
  while (prefix.endsWith(QLatin1Char('/'))) prefix.chop(1);
  if (!prefix.endsWith(QLatin1String("/v1"))) prefix += QStringLiteral("/v1");
  url.setPath(prefix + QLatin1Char('/') + path);
  return url;
}

QString OpenAiChatBackend::describe() const {
  return tr("OpenAI-compatible endpoint at %1").arg(base_.toDisplayString(QUrl::RemoveUserInfo));
}

QString OpenAiChatBackend::send(const QList<ui::ChatTurn>& conversation, int maxTokens) {
  ui::GenerationOptions options;
  options.maxTokens = maxTokens;
  return sendWith(conversation, options);
}

void OpenAiChatBackend::requestModels() {
  if (!isReady()) {
    QMetaObject::invokeMethod(
        this, [this] { emit modelsListed({}, tr("No endpoint URL is set (see Settings).")); },
        Qt::QueuedConnection);
    return;
  }
  QUrl url = completionsUrl();
  url.setPath(url.path().replace(QStringLiteral("/chat/completions"), QStringLiteral("/models")));
  QNetworkReply* reply = network_.get(request(url));
  connect(reply, &QNetworkReply::finished, this, [this, reply] {
    reply->deleteLater();
    const QByteArray body = reply->readAll();
    QStringList models;
    QString error;
    if (httpStatus(reply) == 200) {
      const QJsonArray data =
          QJsonDocument::fromJson(body).object().value(QStringLiteral("data")).toArray();
      for (const auto& m : data) {
        const QString id = m.toObject().value(QStringLiteral("id")).toString();
        if (!id.isEmpty()) models.append(id);
      }
    } else {
      error = failure(reply, body, false);
      if (error.isEmpty()) error = tr("The endpoint does not list its models.");
    }
    emit modelsListed(models, error);
  });
}

QString OpenAiChatBackend::sendWith(const QList<ui::ChatTurn>& conversation,
                                    const ui::GenerationOptions& options) {
  const int maxTokens = options.maxTokens;
  QString id = QUuid::createUuid().toString(QUuid::WithoutBraces);
  if (!isReady()) {
    QMetaObject::invokeMethod(
        this, [this, id] { emit failed(id, tr("No endpoint URL is set (see Settings).")); },
        Qt::QueuedConnection);
    return id;
  }
  QJsonArray messages;
  for (const auto& turn : conversation) {
    messages.append(QJsonObject{{QStringLiteral("role"), turn.role},
                                {QStringLiteral("content"), turn.content}});
  }
  auto call = std::make_shared<Call>();
  calls_.insert(id, call);
  call->clock.start();
  call->body = QJsonObject{
      {QStringLiteral("messages"), messages},
      {QStringLiteral("stream"), true},
      {QStringLiteral("stream_options"), QJsonObject{{QStringLiteral("include_usage"), true}}},
  };
  if (maxTokens > 0) call->body.insert(QStringLiteral("max_tokens"), maxTokens);
  if (options.temperature >= 0)
    call->body.insert(QStringLiteral("temperature"), options.temperature);
  if (options.topP >= 0) call->body.insert(QStringLiteral("top_p"), options.topP);
  const QString model = options.model.isEmpty() ? model_ : options.model;
  if (!model.isEmpty()) {
    post(id, model);
    return id;
  }
  // No model chosen: the endpoint's first one (GET /v1/models).
  QUrl url = completionsUrl();
  url.setPath(url.path().replace(QStringLiteral("/chat/completions"), QStringLiteral("/models")));
  call->reply = network_.get(request(url));
  connect(call->reply, &QNetworkReply::finished, this, [this, id] {
    const auto held = calls_.value(id);
    if (!held || !held->reply) return;
    QNetworkReply* reply = held->reply;
    reply->deleteLater();
    held->reply = nullptr;
    if (held->cancelled) {
      calls_.remove(id);
      ui::AnswerSummary s;
      s.finishReason = QStringLiteral("cancelled");
      emit finished(id, s);
      return;
    }
    const QByteArray body = reply->readAll();
    const int status = httpStatus(reply);
    QString model;
    if (status == 200) {
      const QJsonArray models =
          QJsonDocument::fromJson(body).object().value(QStringLiteral("data")).toArray();
      if (!models.isEmpty()) {
        model = models.first().toObject().value(QStringLiteral("id")).toString();
      }
    } else if (status != 404) {  // 404: the endpoint lists no models; ask for "default"
      const QString why = failure(reply, body, false);
      if (!why.isEmpty()) {
        calls_.remove(id);
        emit failed(id, why);
        return;
      }
    }
    post(id, model.isEmpty() ? QStringLiteral("default") : model);
  });
  return id;
}

QNetworkRequest OpenAiChatBackend::request(const QUrl& url) const {
  QNetworkRequest r(url);
  if (!apiKey_.isEmpty()) r.setRawHeader("Authorization", "Bearer " + apiKey_.toUtf8());
  r.setTransferTimeout(kTransferTimeoutMs);
  return r;
}

void OpenAiChatBackend::post(const QString& id, const QString& model) {
  const auto call = calls_.value(id);
  if (!call) return;
  call->body.insert(QStringLiteral("model"), model);
  QNetworkRequest r = request(completionsUrl());
  r.setHeader(QNetworkRequest::ContentTypeHeader, QStringLiteral("application/json"));
  r.setRawHeader("Accept", "text/event-stream");
  call->reply = network_.post(r, QJsonDocument(call->body).toJson(QJsonDocument::Compact));
  connect(call->reply, &QNetworkReply::readyRead, this, [this, id] { onReadyRead(id); });
  connect(call->reply, &QNetworkReply::finished, this, [this, id] { onFinished(id); });
}

void OpenAiChatBackend::cancel(const QString& id) {
  const auto call = calls_.value(id);
  if (!call || call->ended || !call->reply) return;
  call->cancelled = true;
  call->reply->abort();  // finished() follows, and reports the cancellation
}

void OpenAiChatBackend::onReadyRead(const QString& id) {
  const auto held = calls_.value(id);
  if (!held || !held->reply || held->ended) return;
  Call& call = *held;
  // An HTTP error's body is read whole when the reply finishes.
  if (httpStatus(call.reply) >= 300) return;
  call.buffer += call.reply->readAll();
  qsizetype newline;
  while (!call.ended && (newline = call.buffer.indexOf('\n')) >= 0) {
    QByteArray line = call.buffer.left(newline);
    call.buffer.remove(0, newline + 1);
    if (line.endsWith('\r')) line.chop(1);
    handleLine(id, call, line);
  }
  if (call.ended && call.reply) call.reply->abort();
}

void OpenAiChatBackend::handleLine(const QString& id, Call& call, const QByteArray& line) {
  if (line.isEmpty()) {
    // The end of an event: dispatch its data.
    if (!call.data.isEmpty()) {
      const QByteArray data = std::exchange(call.data, {});
      handleData(id, call, data);
    }
    return;
  }
  if (line.startsWith(':')) {
    handleComment(id, call, line.mid(1).trimmed());
    return;
  }
  if (line.startsWith("data:")) {
    QByteArray value = line.mid(5);
    if (value.startsWith(' ')) value.remove(0, 1);
    if (!call.data.isEmpty()) call.data += '\n';
    call.data += value;
  }
  // Other fields (event:, id:, retry:) carry nothing for chat completions.
}

void OpenAiChatBackend::handleComment(const QString& id, Call& call, const QByteArray& comment) {
  if (comment.startsWith("index=")) {
    bool ok = false;
    const int index = comment.mid(6).toInt(&ok);
    if (ok && index >= 0) call.nextIndex = index;
  } else if (comment.startsWith("accepted ")) {
    emit accepted(id, field(comment, "queue_position").toInt(), field(comment, "eta_ms").toInt());
  } else if (comment.startsWith("routed ")) {
    emit routed(id, QString::fromUtf8(field(comment, "node")), QString());
  } else if (comment.startsWith("redirected ")) {
    emit redirected(id, QString::fromUtf8(field(comment, "from")),
                    QString::fromUtf8(field(comment, "to")), tr("the node failed or was drained"));
  } else if (comment.startsWith("degraded ")) {
    emit degraded(id, QString::fromUtf8(comment.mid(9)));
  } else if (comment.startsWith("receipt ")) {
    // Only the id is taken from the server's path: the receipt is fetched under the same base
    // URL as the answer (a reverse proxy's prefix included), never from an arbitrary path.
    constexpr QByteArrayView kPrefix = "/v1/receipts/";
    const QByteArray path = comment.mid(8).trimmed();
    const QByteArray receiptId = path.startsWith(kPrefix) ? path.mid(kPrefix.size()) : QByteArray();
    static const QRegularExpression kSafeId(QStringLiteral("^[A-Za-z0-9._~-]{1,200}$"));
    if (kSafeId.match(QString::fromUtf8(receiptId)).hasMatch()) {
      call.receiptId = QString::fromUtf8(receiptId);
    } else {
      qWarning("OpenAI-compatible endpoint: ignoring a malformed receipt comment for %s",
               qPrintable(id));
    }
  }
}

void OpenAiChatBackend::handleData(const QString& id, Call& call, const QByteArray& data) {
  if (data.trimmed() == "[DONE]") {
    ui::AnswerSummary s;
    s.promptTokens = call.promptTokens;
    s.completionTokens = call.completionTokens > 0 ? call.completionTokens : call.tokens;
    s.totalMs = static_cast<double>(call.clock.elapsed());
    s.ttftMs = call.ttftMs >= 0 ? call.ttftMs : s.totalMs;
    const double decodeMs = s.totalMs - s.ttftMs;
    if (call.tokens > 1 && decodeMs > 0) s.tokensPerSecond = (call.tokens - 1) * 1000.0 / decodeMs;
    s.finishReason = call.finishReason.isEmpty() ? QStringLiteral("stop") : call.finishReason;
    call.ended = true;
    if (!call.receiptId.isEmpty()) {
      finishWithReceipt(id, call.receiptId, s);
    } else {
      emit finished(id, s);
    }
    return;
  }
  QJsonParseError parseError;
  const QJsonDocument doc = QJsonDocument::fromJson(data, &parseError);
  if (!doc.isObject()) {
    fail(id, call,
         tr("The endpoint sent a malformed stream (%1); the answer so far is kept.")
             .arg(parseError.error != QJsonParseError::NoError ? parseError.errorString()
                                                               : tr("not a JSON object")));
    return;
  }
  const QJsonObject o = doc.object();
  if (o.contains(QStringLiteral("error"))) {
    const QJsonValue e = o.value(QStringLiteral("error"));
    const QString message =
        e.isObject() ? e.toObject().value(QStringLiteral("message")).toString() : e.toString();
    fail(id, call, tr("The endpoint reported an error: %1").arg(message));
    return;
  }
  const QJsonObject usage = o.value(QStringLiteral("usage")).toObject();
  if (!usage.isEmpty()) {
    call.promptTokens = usage.value(QStringLiteral("prompt_tokens")).toInt();
    call.completionTokens = usage.value(QStringLiteral("completion_tokens")).toInt();
  }
  for (const auto& choiceValue : o.value(QStringLiteral("choices")).toArray()) {
    const QJsonObject choice = choiceValue.toObject();
    if (choice.value(QStringLiteral("index")).toInt() != 0) continue;
    const QString text = choice.value(QStringLiteral("delta"))
                             .toObject()
                             .value(QStringLiteral("content"))
                             .toString();
    if (!text.isEmpty()) {
      if (call.ttftMs < 0) call.ttftMs = static_cast<double>(call.clock.elapsed());
      ++call.tokens;
      emit tokenReceived(id, call.nextIndex++, text);
    }
    const QJsonValue reason = choice.value(QStringLiteral("finish_reason"));
    if (reason.isString()) call.finishReason = reason.toString();
  }
}

void OpenAiChatBackend::finishWithReceipt(const QString& id, const QString& receiptId,
                                          ui::AnswerSummary summary) {
  QNetworkRequest r = request(apiUrl(QStringLiteral("receipts/") + receiptId));
  r.setTransferTimeout(kReceiptTimeoutMs);
  QNetworkReply* reply = network_.get(r);
  connect(reply, &QNetworkReply::finished, this, [this, reply, id, receiptId, summary]() mutable {
    reply->deleteLater();
    const QByteArray body = reply->readAll();
    if (httpStatus(reply) == 200 && reply->error() == QNetworkReply::NoError) {
      // The document as served, byte for byte (the history keeps it, the badge checks it).
      summary.receiptJson = QString::fromUtf8(body).trimmed();
    } else {
      // The answer is complete and stays so; only its proof is missing, which the log says.
      const int status = httpStatus(reply);
      const QString why = status > 0 ? QStringLiteral("HTTP %1 %2")
                                           .arg(status)
                                           .arg(QString::fromUtf8(body.left(200)).trimmed())
                                     : reply->errorString();
      qWarning("Cannot fetch the receipt %s of answer %s: %s", qPrintable(receiptId),
               qPrintable(id), qPrintable(why));
    }
    emit finished(id, summary);
  });
}

void OpenAiChatBackend::fail(const QString& id, Call& call, const QString& message) {
  if (call.ended) return;
  call.ended = true;
  emit failed(id, message);
}

QString OpenAiChatBackend::httpError(QNetworkReply* reply, const QByteArray& body) const {
  const int status = httpStatus(reply);
  QString detail = QJsonDocument::fromJson(body)
                       .object()
                       .value(QStringLiteral("error"))
                       .toObject()
                       .value(QStringLiteral("message"))
                       .toString();
  if (detail.isEmpty()) {
    detail = reply->attribute(QNetworkRequest::HttpReasonPhraseAttribute).toString();
  }
  if (status == 401 || status == 403) {
    return tr("The endpoint refused the API key (HTTP %1: %2). Check the key in Settings.")
        .arg(status)
        .arg(detail);
  }
  if (status == 404) {
    return tr("The endpoint has no %1 (HTTP 404: %2). Check the URL in Settings.")
        .arg(completionsUrl().path(), detail);
  }
  return tr("The endpoint answered HTTP %1: %2").arg(status).arg(detail);
}

QString OpenAiChatBackend::failure(QNetworkReply* reply, QByteArray body, bool midStream) const {
  if (httpStatus(reply) >= 300) {
    if (body.isEmpty()) body = reply->readAll();
    return httpError(reply, body);
  }
  if (reply->error() == QNetworkReply::NoError) return {};
  const QString where = base_.toDisplayString(QUrl::RemoveUserInfo);
  switch (reply->error()) {
    case QNetworkReply::ConnectionRefusedError:
    case QNetworkReply::HostNotFoundError:
    case QNetworkReply::TimeoutError:
    case QNetworkReply::OperationCanceledError:  // the transfer timeout
    case QNetworkReply::TemporaryNetworkFailureError:
    case QNetworkReply::NetworkSessionFailedError:
      return tr("Cannot reach %1: %2. Is the server running, and is the URL right?")
          .arg(where, reply->errorString());
    case QNetworkReply::RemoteHostClosedError:
      if (!midStream) return tr("Cannot reach %1: %2").arg(where, reply->errorString());
      break;
    default:
      break;
  }
  return tr("The connection to %1 failed: %2").arg(where, reply->errorString());
}

void OpenAiChatBackend::onFinished(const QString& id) {
  const auto held = calls_.take(id);
  if (!held) return;
  Call& call = *held;
  QNetworkReply* reply = call.reply;
  if (!reply) return;
  reply->deleteLater();
  if (call.ended) return;
  if (call.cancelled) {
    ui::AnswerSummary s;
    s.finishReason = QStringLiteral("cancelled");
    s.totalMs = static_cast<double>(call.clock.elapsed());
    if (call.ttftMs >= 0) s.ttftMs = call.ttftMs;
    emit finished(id, s);
    return;
  }
  const QString why = failure(reply, {}, call.tokens > 0);
  if (!why.isEmpty()) {
    emit failed(id, why);
    return;
  }
  // The stream's last bytes, then whatever is left without [DONE].
  call.buffer += reply->readAll();
  call.buffer += "\n\n";
  for (const QByteArray& raw : call.buffer.split('\n')) {
    if (call.ended) break;
    QByteArray line = raw;
    if (line.endsWith('\r')) line.chop(1);
    handleLine(id, call, line);
  }
  if (!call.ended) {
    emit failed(id, tr("The endpoint ended the answer early (no [DONE]); the answer so far "
                       "is kept."));
  }
}

}  // namespace tidelane::app
