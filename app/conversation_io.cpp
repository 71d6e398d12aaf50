#include "app/conversation_io.h"

#include <QFile>
#include <QHash>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSaveFile>
#include <QSet>

#include "app/chat_store.h"
#include "ui/conversation_settings.h"

namespace tidelane::app {
namespace {

const QString kFormat = QStringLiteral("tidelane-conversation");

QString iso(const QDateTime& t) {
  return t.toUTC().toString(Qt::ISODateWithMs);
}

QJsonObject objectOf(const QString& json) {
  return QJsonDocument::fromJson(json.toUtf8()).object();
}

QString roleLabel(const QString& role) {
  if (role == QLatin1String("user")) return ConversationIo::tr("You");
  if (role == QLatin1String("system")) return ConversationIo::tr("System");
  return ConversationIo::tr("Tidelane");
}

}  // namespace

QByteArray ConversationIo::toJson(const ConversationExport& c) {
  QJsonArray messages;
  for (const auto& m : c.messages) {
    QJsonObject o{
        {QStringLiteral("id"), m.id},
        {QStringLiteral("role"), m.role},
        {QStringLiteral("content"), m.content},
        {QStringLiteral("created"), iso(m.created)},
        {QStringLiteral("state"), ChatStore::stateName(m.state)},
        {QStringLiteral("trace"), objectOf(m.traceJson)},
    };
    o.insert(QStringLiteral("parent"), m.parentId > 0 ? QJsonValue(m.parentId) : QJsonValue());
    if (!m.receiptJson.isEmpty()) o.insert(QStringLiteral("receipt"), m.receiptJson);
    messages.append(o);
  }
  const QJsonObject conversation{
      {QStringLiteral("title"), c.info.title},
      {QStringLiteral("created"), iso(c.info.created)},
      {QStringLiteral("updated"), iso(c.info.updated)},
      {QStringLiteral("pinned"), c.info.pinned},
      {QStringLiteral("model"), c.info.model},
      {QStringLiteral("settings"), objectOf(c.info.settingsJson)},
  };
  const QJsonObject root{
      {QStringLiteral("format"), kFormat},
      {QStringLiteral("version"), kFormatVersion},
      {QStringLiteral("exported"), iso(QDateTime::currentDateTimeUtc())},
      {QStringLiteral("conversation"), conversation},
      {QStringLiteral("messages"), messages},
  };
  return QJsonDocument(root).toJson(QJsonDocument::Indented);
}

QByteArray ConversationIo::toMarkdown(const ConversationExport& c) {
  QHash<qint64, QList<const ui::StoredMessage*>> children;  // parent (0: none) → children
  for (const auto& m : c.messages) children[m.parentId].append(&m);
  QString out;
  const QString title = c.info.title.isEmpty() ? tr("Untitled conversation") : c.info.title;
  out += QStringLiteral("# %1\n\n").arg(title);
  out += tr("Exported from Tidelane on %1.").arg(iso(QDateTime::currentDateTimeUtc())) +
         QStringLiteral("\n\n");
  const auto settings = ui::ConversationSettings::fromJsonText(c.info.settingsJson, c.info.model);
  QStringList lines;
  if (!settings.model.isEmpty()) lines << tr("Model: %1").arg(settings.model);
  if (settings.temperature >= 0) lines << tr("Temperature: %1").arg(settings.temperature);
  if (settings.topP >= 0) lines << tr("Top-p: %1").arg(settings.topP);
  if (settings.maxTokens > 0) lines << tr("Max tokens: %1").arg(settings.maxTokens);
  for (const auto& l : lines) out += QStringLiteral("- %1\n").arg(l);
  if (!settings.systemPrompt.isEmpty()) {
    out += QStringLiteral("- %1\n\n").arg(tr("System prompt:"));
    for (const auto& l : settings.systemPrompt.split(QLatin1Char('\n')))
      out += QStringLiteral("  > %1\n").arg(l);
  }
  out += QStringLiteral("\n");

  // Depth first: a fork lists its branches in order, each followed by its own replies.
  struct Item {
    const ui::StoredMessage* m;
    QString branch;
  };
  QList<Item> stack;
  const auto push = [&](qint64 parent) {
    const auto& kids = children.value(parent);
    for (qsizetype i = kids.size() - 1; i >= 0; --i) {
      stack.append({kids[i], kids.size() > 1 ? tr("branch %1 of %2").arg(i + 1).arg(kids.size())
                                             : QString()});
    }
  };
  push(0);
  while (!stack.isEmpty()) {
    const Item item = stack.takeLast();
    const auto& m = *item.m;
    QString heading = QStringLiteral("## %1").arg(roleLabel(m.role));
    if (!item.branch.isEmpty()) heading += QStringLiteral(" (%1)").arg(item.branch);
    out += heading + QStringLiteral("\n\n") + m.content + QStringLiteral("\n\n");
    if (m.state == ui::MessageState::Stopped) out += QStringLiteral("*%1*\n\n").arg(tr("Stopped"));
    if (m.state == ui::MessageState::Failed) out += QStringLiteral("*%1*\n\n").arg(tr("Failed"));
    const QString trace = objectOf(m.traceJson).value(QStringLiteral("line")).toString();
    if (!trace.isEmpty()) out += QStringLiteral("<sub>%1</sub>\n\n").arg(trace.toHtmlEscaped());
    if (!m.receiptJson.isEmpty()) {
      out += QStringLiteral("<details><summary>%1</summary>\n\n```json\n%2\n```\n\n</details>\n\n")
                 .arg(tr("Signed receipt"), m.receiptJson);
    }
    push(m.id);
  }
  return out.toUtf8();
}

bool ConversationIo::fromJson(const QByteArray& json, ConversationExport* out, QString* error) {
  const auto bad = [error](const QString& why) {
    *error = why;
    return false;
  };
  QJsonParseError parse;
  const QJsonDocument doc = QJsonDocument::fromJson(json, &parse);
  if (parse.error != QJsonParseError::NoError) {
    return bad(tr("The file is not valid JSON (%1 at byte %2).")
                   .arg(parse.errorString())
                   .arg(parse.offset));
  }
  const QJsonObject root = doc.object();
  if (!doc.isObject() || root.value(QStringLiteral("format")).toString() != kFormat) {
    return bad(
        tr("The file is not a Tidelane conversation (it has no \"format\": \"%1\").").arg(kFormat));
  }
  const int version = root.value(QStringLiteral("version")).toInt(0);
  if (version < 1 || version > kFormatVersion) {
    return bad(tr("The file is a Tidelane conversation of format version %1; this version of "
                  "Tidelane reads up to %2.")
                   .arg(root.value(QStringLiteral("version")).toVariant().toString())
                   .arg(kFormatVersion));
  }
  const QJsonValue conv = root.value(QStringLiteral("conversation"));
  const QJsonValue list = root.value(QStringLiteral("messages"));
  if (!conv.isObject() || !list.isArray()) {
    return bad(tr("The file has no \"conversation\" object or no \"messages\" list."));
  }
  ConversationExport c;
  const QJsonObject co = conv.toObject();
  const QJsonValue settings = co.value(QStringLiteral("settings"));
  if (!co.value(QStringLiteral("title")).isString() &&
      !co.value(QStringLiteral("title")).isUndefined())
    return bad(tr("The conversation's title is not text."));
  if (!settings.isObject() && !settings.isUndefined() && !settings.isNull())
    return bad(tr("The conversation's settings are not a JSON object."));
  c.info.title = co.value(QStringLiteral("title")).toString();
  c.info.created =
      QDateTime::fromString(co.value(QStringLiteral("created")).toString(), Qt::ISODate);
  c.info.updated =
      QDateTime::fromString(co.value(QStringLiteral("updated")).toString(), Qt::ISODate);
  c.info.pinned = co.value(QStringLiteral("pinned")).toBool();
  c.info.model = co.value(QStringLiteral("model")).toString();
  c.info.settingsJson = QString::fromUtf8(
      QJsonDocument(ui::ConversationSettings::fromJson(settings.toObject()).toJson())
          .toJson(QJsonDocument::Compact));

  static const QSet<QString> roles{QStringLiteral("user"), QStringLiteral("assistant"),
                                   QStringLiteral("system")};
  static const QSet<QString> states{QStringLiteral("complete"), QStringLiteral("streaming"),
                                    QStringLiteral("stopped"), QStringLiteral("failed")};
  QSet<qint64> seen;
  const QJsonArray messages = list.toArray();
  for (qsizetype i = 0; i < messages.size(); ++i) {
    const int n = static_cast<int>(i) + 1;
    if (!messages[i].isObject()) return bad(tr("Message %1 is not a JSON object.").arg(n));
    const QJsonObject o = messages[i].toObject();
    ui::StoredMessage m;
    const QJsonValue id = o.value(QStringLiteral("id"));
    m.id = id.toVariant().toLongLong();
    if (!id.isDouble() || m.id <= 0 || seen.contains(m.id))
      return bad(tr("Message %1 has no id, or one already used.").arg(n));
    m.role = o.value(QStringLiteral("role")).toString();
    if (!roles.contains(m.role))
      return bad(tr("Message %1 has an unknown role \"%2\".").arg(n).arg(m.role));
    if (!o.value(QStringLiteral("content")).isString())
      return bad(tr("Message %1 has no text (\"content\").").arg(n));
    m.content = o.value(QStringLiteral("content")).toString();
    const QJsonValue parent = o.value(QStringLiteral("parent"));
    if (!parent.isNull() && !parent.isUndefined()) {
      m.parentId = parent.toVariant().toLongLong();
      if (!parent.isDouble() || !seen.contains(m.parentId)) {
        return bad(tr("Message %1 follows message %2, which is not before it in the file.")
                       .arg(n)
                       .arg(parent.toVariant().toString()));
      }
    }
    const QString state = o.value(QStringLiteral("state")).toString(QStringLiteral("complete"));
    if (!states.contains(state))
      return bad(tr("Message %1 has an unknown state \"%2\".").arg(n).arg(state));
    m.state = ChatStore::stateFromName(state);
    const QJsonValue trace = o.value(QStringLiteral("trace"));
    if (!trace.isObject() && !trace.isUndefined() && !trace.isNull())
      return bad(tr("Message %1 has a routing trace that is not a JSON object.").arg(n));
    m.traceJson = QString::fromUtf8(QJsonDocument(trace.toObject()).toJson(QJsonDocument::Compact));
    const QJsonValue receipt = o.value(QStringLiteral("receipt"));
    if (!receipt.isString() && !receipt.isUndefined() && !receipt.isNull())
      return bad(tr("Message %1 has a receipt that is not text.").arg(n));
    m.receiptJson = receipt.toString();
    m.created = QDateTime::fromString(o.value(QStringLiteral("created")).toString(), Qt::ISODate);
    seen.insert(m.id);
    c.messages.append(m);
  }
  *out = c;
  return true;
}

bool ConversationIo::exportToFile(const ChatStore& store, qint64 id, ExportFormat format,
                                  const QString& path, QString* error) {
  ConversationExport c;
  c.info = store.conversation(id);
  if (c.info.id == 0) {
    *error = tr("There is no stored conversation to export (send a message first).");
    return false;
  }
  c.messages = store.messages(id);
  // Written beside the target and renamed over it, so a full disk never leaves half a file.
  QSaveFile file(path);
  if (!file.open(QIODevice::WriteOnly)) {
    *error = tr("Cannot write %1: %2").arg(path, file.errorString());
    return false;
  }
  file.write(format == ExportFormat::Json ? toJson(c) : toMarkdown(c));
  if (!file.commit()) {
    *error = tr("Cannot write %1: %2").arg(path, file.errorString());
    return false;
  }
  return true;
}

qint64 ConversationIo::importFromFile(ChatStore& store, const QString& path, QString* error) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    *error = tr("Cannot read %1: %2").arg(path, file.errorString());
    return 0;
  }
  if (file.size() > kMaxImportBytes) {
    *error = tr("%1 is too large to be a conversation (over %2 MB).")
                 .arg(path)
                 .arg(kMaxImportBytes / 1000000);
    return 0;
  }
  ConversationExport c;
  QString why;
  if (!fromJson(file.readAll(), &c, &why)) {
    *error = tr("Cannot import %1: %2 Nothing was changed.").arg(path, why);
    return 0;
  }
  const qint64 id = store.importConversation(c.info, c.messages);
  if (id == 0) *error = tr("Cannot import %1: %2").arg(path, store.lastError());
  return id;
}

}  // namespace tidelane::app
