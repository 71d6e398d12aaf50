#include "ui/conversation_model.h"

#include <QJsonDocument>
#include <QJsonObject>

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
    case KeyRole:
      return m.key;
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
  names[KeyRole] = "key";
  return names;
}

ConversationModel::Message ConversationModel::make(const QString& role, const QString& text,
                                                   State state) {
  Message m;
  m.role = role;
  m.text = text;
  m.state = state;
  m.key = nextKey_++;
  return m;
}

void ConversationModel::load(qint64 id) {
  for (const auto& m : std::as_const(messages_)) {
    if (m.state == State::Waiting || m.state == State::Streaming) storeFinish(m);
  }
  beginResetModel();
  messages_.clear();
  conversationId_ = id;
  if (store_ && id > 0) {
    for (const auto& s : store_->messages(id)) {
      Message m = make(s.role, s.content, State::Complete);
      m.storeId = s.id;
      const QJsonObject trace = QJsonDocument::fromJson(s.traceJson.toUtf8()).object();
      m.node = trace.value(QStringLiteral("node")).toString();
      m.lane = trace.value(QStringLiteral("lane")).toString();
      const QString line = trace.value(QStringLiteral("line")).toString();
      if (!line.isEmpty()) m.trace = line.split(QStringLiteral(" · "));
      if (s.state == MessageState::Failed) m.state = State::Failed;
      if (s.state == MessageState::Stopped || s.state == MessageState::Streaming) {
        m.state = State::Cancelled;
        if (m.trace.isEmpty()) m.trace = {tr("interrupted")};
      }
      messages_.append(m);
    }
  }
  endResetModel();
}

void ConversationModel::appendUser(const QString& text) {
  Message m = make(QStringLiteral("user"), text, State::Complete);
  if (store_) {
    if (conversationId_ == 0) {
      conversationId_ = store_->createConversation();
      if (conversationId_ > 0) emit conversationStarted(conversationId_);
    }
    if (conversationId_ > 0) {
      const qint64 parent = messages_.isEmpty() ? 0 : messages_.back().storeId;
      m.storeId =
          store_->appendMessage(conversationId_, m.role, text, MessageState::Complete, parent);
    }
  }
  const int row = static_cast<int>(messages_.size());
  beginInsertRows({}, row, row);
  messages_.append(m);
  endInsertRows();
}

void ConversationModel::beginAnswer(const QString& requestId) {
  Message m = make(QStringLiteral("assistant"), {}, State::Waiting);
  m.requestId = requestId;
  if (store_ && conversationId_ > 0) {
    const qint64 parent = messages_.isEmpty() ? 0 : messages_.back().storeId;
    m.storeId = store_->appendMessage(conversationId_, m.role, {}, MessageState::Streaming, parent);
  }
  const int row = static_cast<int>(messages_.size());
  beginInsertRows({}, row, row);
  messages_.append(m);
  endInsertRows();
}

void ConversationModel::storeFinish(const Message& m) {
  if (!store_ || m.storeId == 0) return;
  MessageState state = MessageState::Complete;
  if (m.state == State::Failed) state = MessageState::Failed;
  if (m.state == State::Cancelled || m.state == State::Waiting || m.state == State::Streaming) {
    state = MessageState::Stopped;
  }
  QJsonObject trace;
  trace.insert(QStringLiteral("line"), m.trace.join(QStringLiteral(" · ")));
  if (!m.node.isEmpty()) trace.insert(QStringLiteral("node"), m.node);
  if (!m.lane.isEmpty()) trace.insert(QStringLiteral("lane"), m.lane);
  store_->finishMessage(m.storeId, state,
                        QString::fromUtf8(QJsonDocument(trace).toJson(QJsonDocument::Compact)));
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
  if (store_ && m.storeId > 0) store_->appendToMessage(m.storeId, text);
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
  storeFinish(m);
  changed(row);
}

void ConversationModel::onFailed(const QString& requestId, const QString& message) {
  const int row = rowOf(requestId);
  if (row < 0) return;
  Message& m = messages_[row];
  m.state = State::Failed;
  m.trace = {tr("failed: %1").arg(message)};
  storeFinish(m);
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
