// ChatBackend: how the UI sends a conversation and hears the answer, whatever carries it
// (the bundled router over gRPC, a remote router, an OpenAI-compatible endpoint).
//
// Threading: lives in the GUI thread; send and cancel return at once, and every signal is
// emitted in the GUI thread. Each request is named by the id send returns.
#pragma once

#include <QList>
#include <QObject>
#include <QString>

namespace tidelane::ui {

struct ChatTurn {
  QString role;  // "system", "user" or "assistant"
  QString content;
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
};

}  // namespace tidelane::ui

Q_DECLARE_METATYPE(tidelane::ui::AnswerSummary)
