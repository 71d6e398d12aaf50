#include "ui/conversation_model.h"

namespace tidelane::ui {

int ConversationModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(messages_.size());
}

QVariant ConversationModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= messages_.size()) return {};
  const Message& m = messages_[index.row()];
  switch (role) {
    case Qt::DisplayRole: {
      QString text = m.text;
      if (m.state == State::Waiting && text.isEmpty()) text = tr("…");
      const QString who = m.role == QLatin1String("user") ? tr("You") : tr("Tidelane");
      QString shown = who + QStringLiteral("\n") + text;
      if (!m.trace.isEmpty()) shown += QStringLiteral("\n") + m.trace.join(QStringLiteral(" · "));
      return shown;
    }
    case Qt::AccessibleTextRole:
      return (m.role == QLatin1String("user") ? tr("You said: ") : tr("Answer: ")) + m.text;
    case RoleRole:
      return m.role;
    case TextRole:
      return m.text;
    case TraceRole:
      return m.trace.join(QStringLiteral(" · "));
    case StateRole:
      return QVariant::fromValue(m.state);
    case RequestIdRole:
      return m.requestId;
    default:
      return {};
  }
}

QHash<int, QByteArray> ConversationModel::roleNames() const {
  auto names = QAbstractListModel::roleNames();
  names[RoleRole] = "role";
  names[TextRole] = "text";
  names[TraceRole] = "trace";
  names[StateRole] = "state";
  names[RequestIdRole] = "requestId";
  return names;
}

void ConversationModel::appendUser(const QString& text) {
  const int row = static_cast<int>(messages_.size());
  beginInsertRows({}, row, row);
  messages_.append(Message{QStringLiteral("user"), text, {}, State::Complete, 0, {}, {}, {}});
  endInsertRows();
}

void ConversationModel::beginAnswer(const QString& requestId) {
  const int row = static_cast<int>(messages_.size());
  beginInsertRows({}, row, row);
  messages_.append(
      Message{QStringLiteral("assistant"), {}, requestId, State::Waiting, 0, {}, {}, {}});
  endInsertRows();
}

int ConversationModel::rowOf(const QString& requestId) const {
  for (int i = static_cast<int>(messages_.size()) - 1; i >= 0; --i) {
    if (messages_[i].requestId == requestId) return i;
  }
  return -1;
}

void ConversationModel::changed(int row) {
  const auto i = index(row);
  emit dataChanged(i, i);
}

void ConversationModel::onAccepted(const QString& requestId, int position, int etaMs) {
  const int row = rowOf(requestId);
  if (row < 0) return;
  Message& m = messages_[row];
  m.trace = {position > 0 ? tr("#%1 in line, about %2 s").arg(position).arg((etaMs + 999) / 1000)
                          : tr("accepted")};
  changed(row);
}

void ConversationModel::onRouted(const QString& requestId, const QString& node,
                                 const QString& lane) {
  const int row = rowOf(requestId);
  if (row < 0) return;
  Message& m = messages_[row];
  m.node = node;
  m.lane = lane;
  m.trace = {tr("%1 (%2)").arg(node, lane)};
  changed(row);
}

void ConversationModel::onToken(const QString& requestId, int index, const QString& text) {
  const int row = rowOf(requestId);
  if (row < 0) return;
  Message& m = messages_[row];
  if (index != m.nextIndex) return;
  m.text += text;
  m.nextIndex = index + 1;
  m.state = State::Streaming;
  changed(row);
}

void ConversationModel::onRedirected(const QString& requestId, const QString& from,
                                     const QString& to, const QString& reason) {
  const int row = rowOf(requestId);
  if (row < 0) return;
  Message& m = messages_[row];
  m.node = to;
  m.trace.append(tr("redirected %1 → %2: %3").arg(from, to, reason));
  changed(row);
}

void ConversationModel::onDegraded(const QString& requestId, const QString& reason) {
  const int row = rowOf(requestId);
  if (row < 0) return;
  messages_[row].trace.append(tr("shortened: %1").arg(reason));
  changed(row);
}

void ConversationModel::onFinished(const QString& requestId, const AnswerSummary& s) {
  const int row = rowOf(requestId);
  if (row < 0) return;
  Message& m = messages_[row];
  const bool cancelled = s.finishReason == QLatin1String("cancelled");
  m.state = cancelled ? State::Cancelled : State::Complete;
  QStringList trace = {tr("%1 (%2)").arg(m.node, m.lane)};
  for (const auto& t : m.trace) {
    if (t.startsWith(tr("redirected")) || t.startsWith(tr("shortened"))) trace.append(t);
  }
  if (s.queueMs >= 1) trace.append(tr("waited %1 ms").arg(qRound(s.queueMs)));
  trace.append(tr("TTFT %1 ms").arg(qRound(s.ttftMs)));
  if (s.tokensPerSecond > 0) trace.append(tr("%1 tok/s").arg(s.tokensPerSecond, 0, 'f', 1));
  if (cancelled) trace.append(tr("stopped"));
  m.trace = trace;
  changed(row);
}

void ConversationModel::onFailed(const QString& requestId, const QString& message) {
  const int row = rowOf(requestId);
  if (row < 0) return;
  Message& m = messages_[row];
  m.state = State::Failed;
  m.trace = {tr("failed: %1").arg(message)};
  changed(row);
}

QList<ChatTurn> ConversationModel::turns() const {
  QList<ChatTurn> out;
  for (const auto& m : messages_) {
    if (m.state == State::Failed || (m.role == QLatin1String("assistant") && m.text.isEmpty())) {
      continue;
    }
    out.append({m.role, m.text});
  }
  return out;
}

bool ConversationModel::busy() const {
  for (const auto& m : messages_) {
    if (m.state == State::Waiting || m.state == State::Streaming) return true;
  }
  return false;
}

}  // namespace tidelane::ui
