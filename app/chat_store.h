// ChatStore: the chat history in one SQLite file through QtSql (ui::ConversationStore).
//
// File: WAL journal, foreign keys on, synchronous=NORMAL (a killed app loses nothing that
// was committed; only a power cut can lose the last commits). Every change runs in one
// transaction. The schema version is PRAGMA user_version; a file from a newer Tidelane,
// a file that is not a Tidelane history or a damaged one is refused with a clear error
// and left untouched. Before migrating an older file, a copy is kept beside it
// (`<file>.v<N>.bak`).
//
// Streaming: appendToMessage commits the growing text before it returns (kFlushTokens is 1),
// so a kill mid-answer keeps every token the view could have shown: the view paints a token
// only after the store has it. In WAL mode with synchronous=NORMAL a commit is a write to the
// log without fsync (0.1-0.2 ms), so even 200 tokens/s cost the GUI thread a few percent. The
// fsyncs are in the checkpoints, which a WalCheckpointer runs on its own thread and connection
// (SQLite's own, inside a commit, took ~10 ms once a second while an answer streamed); the GUI
// connection checkpoints only if that thread falls far behind. open() turns messages left
// `streaming` by a killed app into `stopped`.
//
// Search: SQLite's FTS5 (Debian's SQLite 3.40 has it) over message text, with the
// unicode61 tokenizer and prefix queries; titles are matched with LIKE (few rows). A
// message is indexed when it is appended complete or finished.
//
// Deletion: remove() sets deleted_at (the row stays, so undo is exact); purgeRemoved()
// deletes those rows for good, and open() purges what an earlier run left removed.
//
// Threading: GUI thread only (the QSqlDatabase connection belongs to the creating thread).
// Ownership: owns its connection; close() or the destructor flushes and closes it.
#pragma once

#include <QHash>
#include <QSqlDatabase>
#include <QTimer>
#include <memory>

#include "app/wal_checkpointer.h"
#include "ui/conversation_store.h"

namespace tidelane::app {

class ChatStore : public ui::ConversationStore {
  Q_OBJECT

 public:
  // 2: messages.receipt (the signed receipt of an answer).
  static constexpr int kSchemaVersion = 2;
  static constexpr int kFlushIntervalMs = 100;
  static constexpr int kFlushTokens = 1;
  static constexpr int kTitleLength = 48;

  explicit ChatStore(QObject* parent = nullptr);
  ~ChatStore() override;

  // Opens (or creates) the history at `path`, creating its directory. On failure returns
  // false with lastError() saying why; the file is not changed.
  bool open(const QString& path);
  void close();
  bool isOpen() const { return db_.isOpen(); }
  QString path() const { return path_; }

  // A title from the first user message: its first line, whitespace collapsed, cut on a
  // word boundary to at most kTitleLength characters (with "…" when cut).
  static QString titleFrom(const QString& firstUserMessage);

  QList<ui::ConversationInfo> conversations() const override;
  QList<ui::ConversationInfo> search(const QString& query) const override;
  ui::ConversationInfo conversation(qint64 id) const override;
  QList<ui::StoredMessage> messages(qint64 conversationId) const override;
  qint64 createConversation(const QString& title = {}) override;
  qint64 appendMessage(qint64 conversationId, const QString& role, const QString& content,
                       ui::MessageState state, qint64 parentId = 0) override;
  void appendToMessage(qint64 messageId, const QString& text) override;
  bool finishMessage(qint64 messageId, ui::MessageState state, const QString& traceJson) override;
  bool setReceipt(qint64 messageId, const QString& receiptJson) override;
  bool rename(qint64 conversationId, const QString& title) override;
  bool setPinned(qint64 conversationId, bool pinned) override;
  bool remove(qint64 conversationId) override;
  bool undoRemove(qint64 conversationId) override;
  bool purgeRemoved() override;
  QString lastError() const override { return error_; }

  // Also sets conversation's model and settings (JSON object).
  bool setModel(qint64 conversationId, const QString& model, const QString& settingsJson) override;
  // Adds a whole conversation at once (an import): `info` gives its title, times, pin, model
  // and settings; `messages` its messages in order, each parentId naming an earlier message of
  // the list by its id there (0: none). New ids are given; all or nothing (one transaction).
  // Returns the new conversation's id, or 0 with lastError() saying why.
  qint64 importConversation(const ui::ConversationInfo& info,
                            const QList<ui::StoredMessage>& messages);

  // Writes batched streaming text now. Returns false on a write error.
  bool flush();

  // The thread that checkpoints the WAL while the store is open (null when closed).
  const WalCheckpointer* checkpointer() const { return checkpointer_.get(); }

  static QString stateName(ui::MessageState state);
  static ui::MessageState stateFromName(const QString& name);

 private:
  struct Pending {
    QString content;  // the whole text so far
    qint64 conversationId = 0;
    int tokens = 0;
  };
  bool fail(const QString& message) const;
  bool migrate(int from);
  bool recover();
  bool exec(const QString& sql);
  // After a commit of streamed text, a message or an import: the WAL is copied into the
  // database soon, off this thread (other small writes wait for the next one, or close()).
  void committed();
  bool touch(qint64 conversationId);
  bool index(qint64 messageId, const QString& content);
  QList<ui::ConversationInfo> readConversations(const QString& where,
                                                const QVariantList& binds) const;

  QString path_;
  QString connection_;
  QSqlDatabase db_;
  mutable QString error_;
  QHash<qint64, Pending> pending_;
  QTimer flushTimer_;
  std::unique_ptr<WalCheckpointer> checkpointer_;
};

}  // namespace tidelane::app
