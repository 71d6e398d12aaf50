// Whole-conversation export and import: Markdown for people, JSON for Tidelane.
//
// JSON ("format": "tidelane-conversation", "version": 1) holds everything the history keeps
// of a conversation: title, times, pin, model and settings, and every message of every
// branch with its parent, state, routing trace and receipt (the receipt as the exact text
// it was stored as, so it still verifies byte for byte). Markdown shows the same tree: each
// fork's branches one after the other, labelled "branch k of n".
//
// Import reads a file fully and checks it before the store is touched: a file that is not
// JSON, not a Tidelane conversation, from a newer format, or with a message that names an
// unknown parent, an unknown role or state, is refused with a message saying which and where;
// then the conversation is added in one transaction, always as a new conversation (importing
// a file twice gives two; nothing is merged or overwritten).
//
// Threading: GUI thread (the store's).
#pragma once

#include <QByteArray>
#include <QCoreApplication>
#include <QList>
#include <QString>

#include "ui/conversation_store.h"

namespace tidelane::app {

class ChatStore;

struct ConversationExport {
  ui::ConversationInfo info;
  QList<ui::StoredMessage> messages;
};

enum class ExportFormat { Markdown, Json };

class ConversationIo {
  Q_DECLARE_TR_FUNCTIONS(tidelane::app::ConversationIo)

 public:
  static constexpr int kFormatVersion = 1;
  static constexpr qint64 kMaxImportBytes = qint64{64} * 1024 * 1024;

  static QByteArray toJson(const ConversationExport& c);
  static QByteArray toMarkdown(const ConversationExport& c);
  // Parses and checks an exported conversation. On failure returns false and says why.
  static bool fromJson(const QByteArray& json, ConversationExport* out, QString* error);

  // Writes conversation `id` of `store` to `path`. Returns false with `error` set.
  static bool exportToFile(const ChatStore& store, qint64 id, ExportFormat format,
                           const QString& path, QString* error);
  // Adds the conversation in `path` to `store`; returns its new id, or 0 with `error` set
  // (and the store unchanged).
  static qint64 importFromFile(ChatStore& store, const QString& path, QString* error);
};

}  // namespace tidelane::app
