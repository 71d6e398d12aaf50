// ConversationStore: where the UI keeps conversations and their messages, whatever holds
// them (the app's SQLite history, app/chat_store.h). The UI reads lists and messages and
// records what happens; it never sees SQL.
//
// Threading: GUI thread only; every call is synchronous and short (the store batches the
// writes of a streaming answer itself).
// Errors: calls that change something return false (or 0 for an id) and leave the reason
// in lastError(); `errorOccurred` also reports it, so the window can show it. A failed
// write never loses what was stored before it.
#pragma once

#include <QDateTime>
#include <QList>
#include <QObject>
#include <QString>

namespace tidelane::ui {

struct ConversationInfo {
  qint64 id = 0;
  QString title;  // empty until the first user message names it
  QDateTime created;
  QDateTime updated;  // last message or change
  bool pinned = false;
  QString model;         // the model asked for, empty for the endpoint's default
  QString settingsJson;  // generation settings as a JSON object ("{}" when none)
  QString snippet;       // search results only: where the words were found
};

// The stored life of a message. A message is written as `Streaming` while its answer comes
// in; one still `Streaming` when the store is opened was cut off (the app died) and is
// turned into `Stopped`.
enum class MessageState { Complete, Streaming, Stopped, Failed };

struct StoredMessage {
  qint64 id = 0;
  qint64 conversationId = 0;
  QString role;  // "user", "assistant" or "system"
  QString content;
  QDateTime created;
  qint64 parentId = 0;  // the message this one follows (edits branch from a common parent)
  MessageState state = MessageState::Complete;
  QString traceJson;  // the routing line under an answer, as a JSON object ("{}" when none)
  // The signed receipt the answer came with (router/receipt's JSON document; empty when none).
  QString receiptJson;
};

class ConversationStore : public QObject {
  Q_OBJECT

 public:
  using QObject::QObject;

  // Conversations not deleted: pinned first, then the most recently updated.
  virtual QList<ConversationInfo> conversations() const = 0;
  // Conversations whose title or any message contains every word of `query` (prefix
  // match, case-insensitive), best first; an empty query gives conversations().
  virtual QList<ConversationInfo> search(const QString& query) const = 0;
  virtual ConversationInfo conversation(qint64 id) const = 0;
  // The conversation's messages in order.
  virtual QList<StoredMessage> messages(qint64 conversationId) const = 0;

  // A new, empty conversation; returns its id (0 on error).
  virtual qint64 createConversation(const QString& title = {}) = 0;
  // Appends a message; the first user message of an untitled conversation names it.
  // Returns the message id (0 on error).
  virtual qint64 appendMessage(qint64 conversationId, const QString& role, const QString& content,
                               MessageState state, qint64 parentId = 0) = 0;
  // Adds streamed text to a `Streaming` message. Kept in memory and written in batches
  // (at most ~100 ms apart), so a killed app keeps all but the last moment of an answer.
  virtual void appendToMessage(qint64 messageId, const QString& text) = 0;
  // Writes any batched text and the final state and trace of a message.
  virtual bool finishMessage(qint64 messageId, MessageState state, const QString& traceJson) = 0;
  // Keeps the signed receipt an answer came with, exactly as received (it is verified again
  // whenever it is shown, so the stored text must stay byte for byte).
  virtual bool setReceipt(qint64 messageId, const QString& receiptJson) = 0;
  virtual bool rename(qint64 conversationId, const QString& title) = 0;
  virtual bool setPinned(qint64 conversationId, bool pinned) = 0;
  // Keeps how the conversation is answered: the model asked for (empty: the endpoint's
  // default) and the rest of its settings as a JSON object (ui/conversation_settings.h).
  virtual bool setModel(qint64 conversationId, const QString& model,
                        const QString& settingsJson) = 0;
  // Hides a conversation at once; undoRemove brings it back until purgeRemoved runs (the
  // store purges whatever is still removed when it is next opened).
  virtual bool remove(qint64 conversationId) = 0;
  virtual bool undoRemove(qint64 conversationId) = 0;
  virtual bool purgeRemoved() = 0;

  virtual QString lastError() const = 0;

 signals:
  // The list of conversations (titles, order, pins, deletions) changed.
  void conversationsChanged();
  void errorOccurred(const QString& message);
};

}  // namespace tidelane::ui
