// ChatBackend: how the UI sends a conversation and hears the answer, whatever carries it
// (the bundled router over gRPC, a remote router, an OpenAI-compatible endpoint).
//
// Threading: lives in the GUI thread; send and cancel return at once, and every signal is
// emitted in the GUI thread. Each request is named by the id send returns.
#pragma once

#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>

namespace tidelane::ui {

struct ChatTurn {
  QString role;  // "system", "user" or "assistant"
  QString content;
};

// How a request asks to be answered (a conversation's settings). Values left at their
// defaults are not sent, so the endpoint's own defaults apply.
struct GenerationOptions {
  QString model;            // empty: the endpoint's default
  double temperature = -1;  // < 0: the endpoint's default
  double topP = -1;         // < 0: the endpoint's default
  int maxTokens = 0;        // 0: the endpoint's default
};

// What a finished answer reports, for the routing line under it.
struct AnswerSummary {
  int promptTokens = 0;
  int completionTokens = 0;
  double queueMs = 0;
  double ttftMs = 0;
  double totalMs = 0;
  double tokensPerSecond = 0;
  QString finishReason;
  QString receiptJson;  // the answer's signed receipt (router/receipt's JSON document), or empty
};

class ChatBackend : public QObject {
  Q_OBJECT

 public:
  using QObject::QObject;

  // True when send can be called; readyChanged says when this changes.
  virtual bool isReady() const = 0;
  // A short description of where chats go, for the status bar ("bundled router at ...").
  virtual QString describe() const = 0;
  // Starts answering `conversation` (its last turn is the user's). Returns the request id.
  virtual QString send(const QList<ChatTurn>& conversation, int maxTokens) = 0;
  // send() with a conversation's model and sampling settings. Backends that cannot carry
  // them send with the max tokens only.
  virtual QString sendWith(const QList<ChatTurn>& conversation, const GenerationOptions& options) {
    return send(conversation, options.maxTokens);
  }
  // Asks the endpoint which models it serves; modelsListed answers (an empty list with an
  // error when it cannot say).
  virtual void requestModels() {
    QMetaObject::invokeMethod(
        this, [this] { emit modelsListed({}, tr("This endpoint does not list its models.")); },
        Qt::QueuedConnection);
  }
  // Stops the request; `finished` with reason "cancelled" or `failed` follows.
  virtual void cancel(const QString& id) = 0;

 signals:
  void readyChanged(bool ready);
  void accepted(const QString& id, int queuePosition, int etaMs);
  void routed(const QString& id, const QString& node, const QString& lane);
  void tokenReceived(const QString& id, int index, const QString& text);
  void redirected(const QString& id, const QString& fromNode, const QString& toNode,
                  const QString& reason);
  // The answer will be shorter than asked (a long wait in a surge); `reason` says why.
  void degraded(const QString& id, const QString& reason);
  void finished(const QString& id, const tidelane::ui::AnswerSummary& summary);
  void failed(const QString& id, const QString& message);
  void modelsListed(const QStringList& models, const QString& error);
};

}  // namespace tidelane::ui

Q_DECLARE_METATYPE(tidelane::ui::AnswerSummary)
