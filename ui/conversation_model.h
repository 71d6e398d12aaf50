// ConversationModel: the messages of one conversation, as a list model the chat view
// shows. Assistant messages grow token by token and carry a one-line routing trace.
// With a ConversationStore set, everything is recorded as it happens: the first user
// message starts a stored conversation (conversationStarted), each answer is stored as
// streaming and grows with its tokens, and ends complete, stopped or failed with its
// trace; load() shows a stored conversation.
//
// Threading: GUI thread only. The store is not owned and must outlive the model.
#pragma once

#include <QAbstractListModel>
#include <QList>
#include <QString>

#include "ui/chat_backend.h"
#include "ui/conversation_store.h"

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
    KeyRole,  // quint64, unique to a message for the model's lifetime (caches key on it)
  };
  enum class State { Complete, Waiting, Streaming, Failed, Cancelled };
  Q_ENUM(State)

  using QAbstractListModel::QAbstractListModel;

  // Where messages are recorded; null keeps them in memory only.
  void setStore(ConversationStore* store) { store_ = store; }
  ConversationStore* store() const { return store_; }
  // The stored conversation shown (0: a new chat, stored with its first message).
  qint64 conversationId() const { return conversationId_; }
  // Shows conversation `id` from the store (0: a new, empty chat). Answers still coming in
  // are recorded as stopped first; the caller cancels their requests.
  void load(qint64 id);

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

 signals:
  // The first message of a new chat was stored as conversation `id`.
  void conversationStarted(qint64 id);

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
    qint64 storeId = 0;
    quint64 key = 0;
  };
  int rowOf(const QString& requestId) const;
  void changed(int row);
  Message make(const QString& role, const QString& text, State state);
  // Records the end of a stored answer.
  void storeFinish(const Message& m);

  ConversationStore* store_ = nullptr;
  qint64 conversationId_ = 0;
  quint64 nextKey_ = 1;
  QList<Message> messages_;
};

}  // namespace tidelane::ui
