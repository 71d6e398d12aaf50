#include "app/chat_store.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRegularExpression>
#include <QSet>
#include <QSqlError>
#include <QSqlQuery>
#include <QVariant>
#include <atomic>

namespace tidelane::app {
namespace {

qint64 nowMs() {
  return QDateTime::currentMSecsSinceEpoch();
}

QDateTime fromMs(const QVariant& v) {
  return QDateTime::fromMSecsSinceEpoch(v.toLongLong());
}

// The first schema. Later versions add steps to ChatStore::migrate, never edit this one.
const char* const kSchemaV1[] = {
    R"(CREATE TABLE conversations(
         id INTEGER PRIMARY KEY,
         title TEXT NOT NULL DEFAULT '',
         created INTEGER NOT NULL,
         updated INTEGER NOT NULL,
         pinned INTEGER NOT NULL DEFAULT 0,
         model TEXT NOT NULL DEFAULT '',
         settings TEXT NOT NULL DEFAULT '{}',
         deleted_at INTEGER))",
    R"(CREATE INDEX conversations_by_order ON conversations(pinned DESC, updated DESC))",
    R"(CREATE TABLE messages(
         id INTEGER PRIMARY KEY,
         conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
         role TEXT NOT NULL CHECK(role IN ('system', 'user', 'assistant')),
         content TEXT NOT NULL DEFAULT '',
         created INTEGER NOT NULL,
         parent_id INTEGER REFERENCES messages(id) ON DELETE SET NULL,
         state TEXT NOT NULL DEFAULT 'complete'
               CHECK(state IN ('complete', 'streaming', 'stopped', 'failed')),
         trace TEXT NOT NULL DEFAULT '{}'))",
    R"(CREATE INDEX messages_by_conversation ON messages(conversation_id, id))",
    R"(CREATE INDEX messages_streaming ON messages(state) WHERE state = 'streaming')",
    R"(CREATE VIRTUAL TABLE message_text USING fts5(content,
         tokenize = 'unicode61 remove_diacritics 2'))",
    R"(CREATE TRIGGER messages_unindex AFTER DELETE ON messages BEGIN
         DELETE FROM message_text WHERE rowid = old.id;
       END)",
};

// Version 2: each answer keeps the signed receipt it came with (router/receipt's JSON
// document), so its badge can be checked again whenever the chat is opened.
const char* const kSchemaV2[] = {
    R"(ALTER TABLE messages ADD COLUMN receipt TEXT NOT NULL DEFAULT '')",
};

// Runs a statement with positional binds; on failure the query's error is kept.
bool run(QSqlQuery& q, const QString& sql, const QVariantList& binds = {}) {
  if (!q.prepare(sql)) return false;
  for (const auto& b : binds) q.addBindValue(b);
  return q.exec();
}

// Words of a search as an FTS5 query: each word quoted (so no operator can be injected)
// and prefix-matched; all of them must occur.
QString ftsQuery(const QStringList& words) {
  QStringList parts;
  for (QString w : words) {
    w.remove(QLatin1Char('"'));
    if (!w.isEmpty()) parts.append(QLatin1Char('"') + w + QStringLiteral("\"*"));
  }
  return parts.join(QLatin1Char(' '));
}

QString likePattern(QString word) {
  word = word.toLower();
  word.replace(QLatin1Char('\\'), QStringLiteral("\\\\"));
  word.replace(QLatin1Char('%'), QStringLiteral("\\%"));
  word.replace(QLatin1Char('_'), QStringLiteral("\\_"));
  return QLatin1Char('%') + word + QLatin1Char('%');
}

const QString kConversationColumns =
    QStringLiteral("id, title, created, updated, pinned, model, settings");

}  // namespace

ChatStore::ChatStore(QObject* parent) : ui::ConversationStore(parent) {
  static std::atomic<int> counter{0};
  connection_ = QStringLiteral("tidelane-chat-store-%1").arg(counter++);
  flushTimer_.setSingleShot(true);
  flushTimer_.setInterval(kFlushIntervalMs);
  connect(&flushTimer_, &QTimer::timeout, this, [this] { flush(); });
}

ChatStore::~ChatStore() {
  close();
}

bool ChatStore::fail(const QString& message) const {
  error_ = message;
  emit const_cast<ChatStore*>(this)->errorOccurred(message);
  return false;
}

bool ChatStore::exec(const QString& sql) {
  QSqlQuery q(db_);
  if (!q.exec(sql)) {
    return fail(
        tr("The chat history %1 could not be written: %2").arg(path_, q.lastError().text()));
  }
  return true;
}

bool ChatStore::open(const QString& path) {
  close();
  error_.clear();
  path_ = path;
  const QFileInfo info(path);
  if (!QDir().mkpath(info.absolutePath())) {
    error_ = tr("Cannot create the folder %1 for the chat history.").arg(info.absolutePath());
    return false;
  }
  db_ = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), connection_);
  db_.setDatabaseName(path);
  db_.setConnectOptions(QStringLiteral("QSQLITE_BUSY_TIMEOUT=5000"));
  if (!db_.open()) {
    error_ = tr("Cannot open the chat history %1: %2").arg(path, db_.lastError().text());
    close();
    return false;
  }

  // Read before writing anything: a newer, foreign or damaged file is left as it is.
  int version = 0;
  int objects = 0;
  {
    QSqlQuery q(db_);
    if (!q.exec(QStringLiteral("PRAGMA user_version")) || !q.next()) {
      error_ = tr("The chat history %1 is damaged or is not a Tidelane history file (%2). "
                  "It was left untouched; move it away to start a new history.")
                   .arg(path, q.lastError().text());
      close();
      return false;
    }
    version = q.value(0).toInt();
    if (q.exec(QStringLiteral("SELECT count(*) FROM sqlite_master")) && q.next()) {
      objects = q.value(0).toInt();
    }
  }
  if (version > kSchemaVersion) {
    error_ = tr("The chat history %1 was written by a newer version of Tidelane (schema %2; this "
                "version reads up to %3). It was left untouched; update Tidelane to open it.")
                 .arg(path)
                 .arg(version)
                 .arg(kSchemaVersion);
    close();
    return false;
  }
  if (version == 0 && objects > 0) {
    error_ = tr("%1 is not a Tidelane chat history (it holds other tables). It was left "
                "untouched; choose another file.")
                 .arg(path);
    close();
    return false;
  }

  QSqlQuery q(db_);
  for (const char* pragma :
       {"PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON"}) {
    if (!q.exec(QString::fromLatin1(pragma))) {
      error_ = tr("Cannot set up the chat history %1: %2").arg(path, q.lastError().text());
      close();
      return false;
    }
  }
  // Checkpoints belong to checkpointer_; this connection's own is only the bound on the WAL.
  if (!q.exec(QStringLiteral("PRAGMA wal_autocheckpoint = %1")
                  .arg(WalCheckpointer::kInlineCheckpointPages))) {
    error_ = tr("Cannot set up the chat history %1: %2").arg(path, q.lastError().text());
    close();
    return false;
  }
  if ((version < kSchemaVersion && !migrate(version)) || !recover()) {
    const QString why = error_;
    close();
    error_ = why;
    return false;
  }
  checkpointer_ = std::make_unique<WalCheckpointer>(path);
  return true;
}

void ChatStore::committed() {
  if (checkpointer_) checkpointer_->wrote();
}

bool ChatStore::migrate(int from) {
  if (from > 0) {
    // An older history: keep a copy before changing it.
    QSqlQuery(db_).exec(QStringLiteral("PRAGMA wal_checkpoint(TRUNCATE)"));
    const QString backup = QStringLiteral("%1.v%2.bak").arg(path_).arg(from);
    QFile::remove(backup);
    if (!QFile::copy(path_, backup)) {
      return fail(tr("Cannot back up the chat history to %1 before upgrading it.").arg(backup));
    }
  }
  if (!db_.transaction()) return fail(db_.lastError().text());
  bool ok = true;
  if (from < 1) {
    for (const char* sql : kSchemaV1) ok = ok && exec(QString::fromLatin1(sql));
  }
  if (from < 2) {
    for (const char* sql : kSchemaV2) ok = ok && exec(QString::fromLatin1(sql));
  }
  ok = ok && exec(QStringLiteral("PRAGMA user_version = %1").arg(kSchemaVersion));
  if (!ok || !db_.commit()) {
    const QString why = error_.isEmpty() ? db_.lastError().text() : error_;
    db_.rollback();
    return fail(tr("Cannot create the chat history %1: %2").arg(path_, why));
  }
  return true;
}

bool ChatStore::recover() {
  // Answers a killed app left streaming were cut off: keep them, marked stopped, and
  // searchable. Conversations removed without undo before the app ended go for good.
  if (!db_.transaction()) return fail(db_.lastError().text());
  QSqlQuery q(db_);
  bool ok =
      run(q, QStringLiteral("INSERT INTO message_text(rowid, content) SELECT id, content FROM "
                            "messages WHERE state = 'streaming' AND content != ''")) &&
      run(q, QStringLiteral("UPDATE messages SET state = 'stopped' WHERE state = 'streaming'")) &&
      run(q, QStringLiteral("DELETE FROM conversations WHERE deleted_at IS NOT NULL"));
  if (!ok || !db_.commit()) {
    const QString why = q.lastError().text();
    db_.rollback();
    return fail(tr("Cannot recover the chat history %1: %2").arg(path_, why));
  }
  return true;
}

void ChatStore::close() {
  if (db_.isOpen()) {
    flush();
    // First, so that this connection is the last to close: it checkpoints the WAL and removes it.
    checkpointer_.reset();
    db_.close();
  }
  pending_.clear();
  flushTimer_.stop();
  db_ = QSqlDatabase();
  if (QSqlDatabase::contains(connection_)) QSqlDatabase::removeDatabase(connection_);
}

QString ChatStore::titleFrom(const QString& firstUserMessage) {
  QString line;
  for (const auto& l : firstUserMessage.split(QLatin1Char('\n'))) {
    line = l.simplified();
    if (!line.isEmpty()) break;
  }
  if (line.size() <= kTitleLength) return line;
  int cut = static_cast<int>(line.lastIndexOf(QLatin1Char(' '), kTitleLength));
  if (cut < kTitleLength / 2) cut = kTitleLength - 1;  // one long word: cut inside it
  QString title = line.left(cut);
  while (!title.isEmpty() && QStringLiteral(",;:-–—").contains(title.back())) title.chop(1);
  return title.trimmed() + QStringLiteral("…");
}

QString ChatStore::stateName(ui::MessageState state) {
  switch (state) {
    case ui::MessageState::Streaming:
      return QStringLiteral("streaming");
    case ui::MessageState::Stopped:
      return QStringLiteral("stopped");
    case ui::MessageState::Failed:
      return QStringLiteral("failed");
    case ui::MessageState::Complete:
      break;
  }
  return QStringLiteral("complete");
}

ui::MessageState ChatStore::stateFromName(const QString& name) {
  if (name == QLatin1String("streaming")) return ui::MessageState::Streaming;
  if (name == QLatin1String("stopped")) return ui::MessageState::Stopped;
  if (name == QLatin1String("failed")) return ui::MessageState::Failed;
  return ui::MessageState::Complete;
}

QList<ui::ConversationInfo> ChatStore::readConversations(const QString& where,
                                                         const QVariantList& binds) const {
  QList<ui::ConversationInfo> out;
  if (!db_.isOpen()) return out;
  QSqlQuery q(db_);
  if (!run(q,
           QStringLiteral("SELECT %1 FROM conversations WHERE deleted_at IS NULL %2 "
                          "ORDER BY pinned DESC, updated DESC, id DESC")
               .arg(kConversationColumns, where),
           binds)) {
    fail(tr("Cannot read the chat history: %1").arg(q.lastError().text()));
    return out;
  }
  while (q.next()) {
    ui::ConversationInfo c;
    c.id = q.value(0).toLongLong();
    c.title = q.value(1).toString();
    c.created = fromMs(q.value(2));
    c.updated = fromMs(q.value(3));
    c.pinned = q.value(4).toBool();
    c.model = q.value(5).toString();
    c.settingsJson = q.value(6).toString();
    out.append(c);
  }
  return out;
}

QList<ui::ConversationInfo> ChatStore::conversations() const {
  return readConversations({}, {});
}

ui::ConversationInfo ChatStore::conversation(qint64 id) const {
  const auto list = readConversations(QStringLiteral("AND id = ?"), {id});
  return list.isEmpty() ? ui::ConversationInfo{} : list.first();
}

QList<ui::ConversationInfo> ChatStore::search(const QString& query) const {
  static const QRegularExpression space(QStringLiteral("\\s+"));
  const QStringList words = query.split(space, Qt::SkipEmptyParts);
  if (words.isEmpty()) return conversations();

  // Conversations with a message holding every word, and the best snippet of each.
  QHash<qint64, QString> snippets;
  const QString fts = ftsQuery(words);
  if (!fts.isEmpty()) {
    QSqlQuery q(db_);
    if (!run(q,
             QStringLiteral("SELECT m.conversation_id, snippet(message_text, 0, '', '', '…', 10) "
                            "FROM message_text JOIN messages m ON m.id = message_text.rowid "
                            "WHERE message_text MATCH ? ORDER BY rank"),
             {fts})) {
      fail(tr("Cannot search the chat history: %1").arg(q.lastError().text()));
      return {};
    }
    while (q.next()) {
      const qint64 id = q.value(0).toLongLong();
      if (!snippets.contains(id)) snippets.insert(id, q.value(1).toString());
    }
  }
  QStringList titleClauses;
  QVariantList binds;
  for (const auto& w : words) {
    titleClauses.append(QStringLiteral("lower(title) LIKE ? ESCAPE '\\'"));
    binds.append(likePattern(w));
  }
  QStringList ids;
  for (auto it = snippets.cbegin(); it != snippets.cend(); ++it)
    ids.append(QString::number(it.key()));
  const QString where =
      QStringLiteral("AND ((%1)%2)")
          .arg(titleClauses.join(QStringLiteral(" AND ")),
               ids.isEmpty() ? QString()
                             : QStringLiteral(" OR id IN (%1)").arg(ids.join(QLatin1Char(','))));
  auto out = readConversations(where, binds);
  for (auto& c : out) c.snippet = snippets.value(c.id);
  return out;
}

QList<ui::StoredMessage> ChatStore::messages(qint64 conversationId) const {
  QList<ui::StoredMessage> out;
  if (!db_.isOpen()) return out;
  QSqlQuery q(db_);
  // Read once, front to back: without this QtSql keeps a copy of every row for scrolling
  // back, which for a 10,000-message chat is a third of opening it.
  q.setForwardOnly(true);
  if (!run(q,
           QStringLiteral("SELECT id, role, content, created, parent_id, state, trace, receipt "
                          "FROM messages WHERE conversation_id = ? ORDER BY id"),
           {conversationId})) {
    fail(tr("Cannot read the chat history: %1").arg(q.lastError().text()));
    return out;
  }
  while (q.next()) {
    ui::StoredMessage m;
    m.id = q.value(0).toLongLong();
    m.conversationId = conversationId;
    m.role = q.value(1).toString();
    m.content = q.value(2).toString();
    m.created = fromMs(q.value(3));
    m.parentId = q.value(4).toLongLong();
    m.state = stateFromName(q.value(5).toString());
    m.traceJson = q.value(6).toString();
    m.receiptJson = q.value(7).toString();
    if (auto it = pending_.constFind(m.id); it != pending_.cend()) m.content = it->content;
    out.append(m);
  }
  return out;
}

qint64 ChatStore::createConversation(const QString& title) {
  if (!db_.isOpen()) {
    fail(tr("The chat history is not open."));
    return 0;
  }
  QSqlQuery q(db_);
  const qint64 now = nowMs();
  if (!run(q,
           QStringLiteral(
               "INSERT INTO conversations(title, created, updated) VALUES (COALESCE(?, ''), ?, ?)"),
           {title.simplified(), now, now})) {
    fail(tr("Cannot save the new conversation: %1").arg(q.lastError().text()));
    return 0;
  }
  emit conversationsChanged();
  return q.lastInsertId().toLongLong();
}

bool ChatStore::touch(qint64 conversationId) {
  QSqlQuery q(db_);
  return run(q, QStringLiteral("UPDATE conversations SET updated = ? WHERE id = ?"),
             {nowMs(), conversationId});
}

bool ChatStore::index(qint64 messageId, const QString& content) {
  QSqlQuery q(db_);
  if (!run(q, QStringLiteral("DELETE FROM message_text WHERE rowid = ?"), {messageId})) {
    return false;
  }
  if (content.isEmpty()) return true;
  return run(q, QStringLiteral("INSERT INTO message_text(rowid, content) VALUES (?, ?)"),
             {messageId, content});
}

qint64 ChatStore::appendMessage(qint64 conversationId, const QString& role, const QString& content,
                                ui::MessageState state, qint64 parentId) {
  if (!db_.isOpen()) {
    fail(tr("The chat history is not open."));
    return 0;
  }
  if (!db_.transaction()) {
    fail(db_.lastError().text());
    return 0;
  }
  QSqlQuery q(db_);
  bool ok = run(q,
                QStringLiteral("SELECT title FROM conversations WHERE id = ? AND "
                               "deleted_at IS NULL"),
                {conversationId}) &&
            q.next();
  const bool untitled = ok && q.value(0).toString().isEmpty();
  qint64 id = 0;
  if (ok) {
    ok = run(q,
             QStringLiteral("INSERT INTO messages(conversation_id, role, content, created, "
                            "parent_id, state) VALUES (?, ?, COALESCE(?, ''), ?, ?, ?)"),
             {conversationId, role, content, nowMs(),
              parentId > 0 ? QVariant(parentId) : QVariant(QMetaType::fromType<qint64>()),
              stateName(state)});
    id = q.lastInsertId().toLongLong();
  }
  if (ok && untitled && role == QLatin1String("user")) {
    ok = run(q, QStringLiteral("UPDATE conversations SET title = ? WHERE id = ?"),
             {titleFrom(content), conversationId});
  }
  ok = ok && touch(conversationId);
  if (ok && state != ui::MessageState::Streaming) ok = index(id, content);
  if (!ok || !db_.commit()) {
    const QString why =
        q.lastError().text().isEmpty() ? tr("no such conversation") : q.lastError().text();
    db_.rollback();
    fail(tr("Cannot save the message: %1").arg(why));
    return 0;
  }
  committed();
  emit conversationsChanged();
  return id;
}

void ChatStore::appendToMessage(qint64 messageId, const QString& text) {
  if (!db_.isOpen() || text.isEmpty()) return;
  auto it = pending_.find(messageId);
  if (it == pending_.end()) {
    QSqlQuery q(db_);
    if (!run(q, QStringLiteral("SELECT content, conversation_id FROM messages WHERE id = ?"),
             {messageId}) ||
        !q.next()) {
      fail(tr("Cannot save the answer: message %1 is not in the history.").arg(messageId));
      return;
    }
    it = pending_.insert(messageId, Pending{q.value(0).toString(), q.value(1).toLongLong(), 0});
  }
  it->content += text;
  ++it->tokens;
  if (it->tokens >= kFlushTokens) {
    flush();
  } else if (!flushTimer_.isActive()) {
    flushTimer_.start();
  }
}

bool ChatStore::flush() {
  flushTimer_.stop();
  bool dirty = false;
  for (const auto& p : std::as_const(pending_)) dirty = dirty || p.tokens > 0;
  if (!dirty || !db_.isOpen()) return true;
  if (!db_.transaction()) return fail(db_.lastError().text());
  QSqlQuery q(db_);
  bool ok = q.prepare(QStringLiteral("UPDATE messages SET content = COALESCE(?, '') WHERE id = ?"));
  QSet<qint64> conversations;
  for (auto it = pending_.cbegin(); ok && it != pending_.cend(); ++it) {
    if (it->tokens == 0) continue;
    q.addBindValue(it->content);
    q.addBindValue(it.key());
    ok = q.exec();
    conversations.insert(it->conversationId);
  }
  for (const qint64 c : conversations) ok = ok && touch(c);
  if (!ok || !db_.commit()) {
    const QString why = q.lastError().text();
    db_.rollback();
    // The text stays pending: the next flush tries again.
    if (!flushTimer_.isActive()) flushTimer_.start();
    return fail(tr("Cannot save the answer to the chat history: %1").arg(why));
  }
  for (auto& p : pending_) p.tokens = 0;
  committed();
  return true;
}

bool ChatStore::setReceipt(qint64 messageId, const QString& receiptJson) {
  if (!db_.isOpen()) return fail(tr("The chat history is not open."));
  QSqlQuery q(db_);
  if (!run(q, QStringLiteral("UPDATE messages SET receipt = ? WHERE id = ?"),
           {receiptJson, messageId})) {
    return fail(tr("Cannot save the answer's receipt: %1").arg(q.lastError().text()));
  }
  if (q.numRowsAffected() != 1)
    return fail(tr("No message %1 to keep a receipt for.").arg(messageId));
  return true;
}

bool ChatStore::finishMessage(qint64 messageId, ui::MessageState state, const QString& traceJson) {
  if (!db_.isOpen()) return fail(tr("The chat history is not open."));
  if (!flush()) return false;
  if (!db_.transaction()) return fail(db_.lastError().text());
  QSqlQuery q(db_);
  bool ok =
      run(q, QStringLiteral("UPDATE messages SET state = ?, trace = ? WHERE id = ?"),
          {stateName(state), traceJson.isEmpty() ? QStringLiteral("{}") : traceJson, messageId}) &&
      run(q, QStringLiteral("SELECT content, conversation_id FROM messages WHERE id = ?"),
          {messageId}) &&
      q.next();
  if (ok) {
    const QString content = q.value(0).toString();
    const qint64 conversationId = q.value(1).toLongLong();
    ok = touch(conversationId) && index(messageId, content);
  }
  if (!ok || !db_.commit()) {
    const QString why = q.lastError().text();
    db_.rollback();
    return fail(tr("Cannot save the answer to the chat history: %1").arg(why));
  }
  pending_.remove(messageId);
  committed();
  return true;
}

bool ChatStore::rename(qint64 conversationId, const QString& title) {
  const QString t = title.simplified();
  if (t.isEmpty()) return fail(tr("A conversation needs a title."));
  QSqlQuery q(db_);
  if (!run(q, QStringLiteral("UPDATE conversations SET title = ? WHERE id = ?"),
           {t, conversationId})) {
    return fail(tr("Cannot rename the conversation: %1").arg(q.lastError().text()));
  }
  emit conversationsChanged();
  return true;
}

bool ChatStore::setPinned(qint64 conversationId, bool pinned) {
  QSqlQuery q(db_);
  if (!run(q, QStringLiteral("UPDATE conversations SET pinned = ? WHERE id = ?"),
           {pinned ? 1 : 0, conversationId})) {
    return fail(tr("Cannot pin the conversation: %1").arg(q.lastError().text()));
  }
  emit conversationsChanged();
  return true;
}

bool ChatStore::setModel(qint64 conversationId, const QString& model, const QString& settingsJson) {
  QSqlQuery q(db_);
  // COALESCE: a null QString binds as NULL, and the column is NOT NULL ('' = the default).
  if (!run(q,
           QStringLiteral(
               "UPDATE conversations SET model = COALESCE(?, ''), settings = ? WHERE id = ?"),
           {model, settingsJson.isEmpty() ? QStringLiteral("{}") : settingsJson, conversationId})) {
    return fail(tr("Cannot save the conversation's settings: %1").arg(q.lastError().text()));
  }
  return true;
}

qint64 ChatStore::importConversation(const ui::ConversationInfo& info,
                                     const QList<ui::StoredMessage>& messages) {
  if (!db_.isOpen()) {
    fail(tr("The chat history is not open."));
    return 0;
  }
  if (!db_.transaction()) {
    fail(db_.lastError().text());
    return 0;
  }
  QSqlQuery q(db_);
  const qint64 now = nowMs();
  const auto ms = [now](const QDateTime& t) { return t.isValid() ? t.toMSecsSinceEpoch() : now; };
  bool ok =
      run(q,
          QStringLiteral("INSERT INTO conversations(title, created, updated, pinned, model, "
                         "settings) VALUES (COALESCE(?, ''), ?, ?, ?, COALESCE(?, ''), ?)"),
          {info.title.simplified(), ms(info.created), ms(info.updated), info.pinned ? 1 : 0,
           info.model, info.settingsJson.isEmpty() ? QStringLiteral("{}") : info.settingsJson});
  const qint64 conversationId = ok ? q.lastInsertId().toLongLong() : 0;
  QHash<qint64, qint64> ids;  // id in the import → id here
  for (const auto& m : messages) {
    if (!ok) break;
    const qint64 parent = ids.value(m.parentId, 0);
    // An answer cut off while it was exported is kept as stopped, as open() would.
    const auto state = m.state == ui::MessageState::Streaming ? ui::MessageState::Stopped : m.state;
    ok = run(
        q,
        QStringLiteral("INSERT INTO messages(conversation_id, role, content, created, "
                       "parent_id, state, trace, receipt) VALUES (?, ?, COALESCE(?, ''), ?, "
                       "?, ?, ?, COALESCE(?, ''))"),
        {conversationId, m.role, m.content, ms(m.created),
         parent > 0 ? QVariant(parent) : QVariant(QMetaType::fromType<qint64>()), stateName(state),
         m.traceJson.isEmpty() ? QStringLiteral("{}") : m.traceJson, m.receiptJson});
    if (!ok) break;
    const qint64 id = q.lastInsertId().toLongLong();
    ids.insert(m.id, id);
    ok = index(id, m.content);
  }
  if (!ok || !db_.commit()) {
    const QString why = q.lastError().text();
    db_.rollback();
    fail(tr("Cannot import the conversation: %1").arg(why));
    return 0;
  }
  committed();
  emit conversationsChanged();
  return conversationId;
}

bool ChatStore::remove(qint64 conversationId) {
  QSqlQuery q(db_);
  if (!run(q, QStringLiteral("UPDATE conversations SET deleted_at = ? WHERE id = ?"),
           {nowMs(), conversationId})) {
    return fail(tr("Cannot delete the conversation: %1").arg(q.lastError().text()));
  }
  emit conversationsChanged();
  return true;
}

bool ChatStore::undoRemove(qint64 conversationId) {
  QSqlQuery q(db_);
  if (!run(q, QStringLiteral("UPDATE conversations SET deleted_at = NULL WHERE id = ?"),
           {conversationId}) ||
      q.numRowsAffected() != 1) {
    return fail(tr("The conversation can no longer be restored."));
  }
  emit conversationsChanged();
  return true;
}

bool ChatStore::purgeRemoved() {
  if (!db_.isOpen()) return true;
  if (!db_.transaction()) return fail(db_.lastError().text());
  QSqlQuery q(db_);
  if (!run(q, QStringLiteral("DELETE FROM conversations WHERE deleted_at IS NOT NULL")) ||
      !db_.commit()) {
    const QString why = q.lastError().text();
    db_.rollback();
    return fail(tr("Cannot delete the conversations: %1").arg(why));
  }
  return true;
}

}  // namespace tidelane::app
