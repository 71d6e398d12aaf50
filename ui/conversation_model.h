// ConversationModel: the messages of one conversation, as a list model the chat view
// shows. Assistant messages grow token by token and carry a one-line routing trace.
//
// Threading: GUI thread only.
#pragma once

#include <QAbstractListModel>
#include <QList>
#include <QString>

#include "ui/chat_backend.h"

namespace tidelane::ui {

class ConversationModel : public QAbstractListModel {
  Q_OBJECT

 public:
  enum Role {
    RoleRole = Qt::UserRole + 1,  // "user", "assistant" or "system"
    TextRole,
    TraceRole,  // "queued #3 · routed to node-a (mixed) · TTFT 120 ms · 40 tok/s"
    StateRole,  // State below
    RequestIdRole,
  };
  enum class State { Complete, Waiting, Streaming, Failed, Cancelled };
  Q_ENUM(State)

  using QAbstractListModel::QAbstractListModel;

  int rowCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  QHash<int, QByteArray> roleNames() const override;

  void appendUser(const QString& text);
  // Adds an empty assistant message that the events of `requestId` will fill.
  void beginAnswer(const QString& requestId);
  void onAccepted(const QString& requestId, int position, int etaMs);
  void onRouted(const QString& requestId, const QString& node, const QString& lane);
  // Appends a token; a token whose index is not the next one is ignored, so a replayed
  // or duplicated event can never garble the answer.
  void onToken(const QString& requestId, int index, const QString& text);
  void onRedirected(const QString& requestId, const QString& from, const QString& to,
                    const QString& reason);
  void onDegraded(const QString& requestId, const QString& reason);
  void onFinished(const QString& requestId, const AnswerSummary& summary);
  void onFailed(const QString& requestId, const QString& message);

  // The conversation so far as turns for the next request (failed answers left out).
  QList<ChatTurn> turns() const;
  // True while some answer is still coming in.
  bool busy() const;

 private:
  struct Message {
    QString role;
    QString text;
    QString requestId;
    State state = State::Complete;
    int nextIndex = 0;
    QString node;
    QString lane;
    QStringList trace;
  };
  int rowOf(const QString& requestId) const;
  void changed(int row);

  QList<Message> messages_;
};

}  // namespace tidelane::ui
