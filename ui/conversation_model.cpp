#include "ui/conversation_model.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <algorithm>

namespace tidelane::ui {
namespace {

const QString kSep = QStringLiteral(" · ");

// "node-a (mixed)", or just "node-a" when the lane is not known (HTTP endpoints).
QString where(const QString& node, const QString& lane) {
  return lane.isEmpty() ? node : ConversationModel::tr("%1 (%2)").arg(node, lane);
}

}  // namespace

int ConversationModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

QVariant ConversationModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rows_.size()) return {};
  const int node = rows_[index.row()];
  const Message& m = nodes_[node];
  switch (role) {
    case Qt::DisplayRole: {
      QString text = m.text;
      if (m.state == State::Waiting && text.isEmpty()) text = tr("…");
      const QString who = m.role == QLatin1String("user") ? tr("You") : tr("Tidelane");
      QString shown = who + QStringLiteral("\n") + text;
      if (!m.trace.isEmpty()) shown += QStringLiteral("\n") + m.trace.join(kSep);
      return shown;
    }
    case Qt::AccessibleTextRole:
      return (m.role == QLatin1String("user") ? tr("You said: ") : tr("Answer: ")) + m.text;
    case RoleRole:
      return m.role;
    case TextRole:
      return m.text;
    case TraceRole:
      return m.trace.join(kSep);
    case StateRole:
      return QVariant::fromValue(m.state);
    case RequestIdRole:
      return m.requestId;
    case KeyRole:
      return m.key;
    case TimelineRole:
      return m.timeline;
    case ExpandedRole:
      return m.expanded;
    case BranchRole:
      return static_cast<int>(children_.value(m.parent).indexOf(node)) + 1;
    case BranchCountRole:
      return static_cast<int>(children_.value(m.parent).size());
    case ReceiptBadgeRole:
      return static_cast<int>(m.receipt.badge);
    case ReceiptProblemRole:
      return m.receipt.problem;
    case ReceiptFieldsRole: {
      QStringList lines;
      for (const auto& [field, value] : m.receipt.fields)
        lines.append(field + QStringLiteral(": ") + value);
      return lines;
    }
    case ReceiptJsonRole:
      return m.receiptJson;
    default:
      return {};
  }
}

bool ConversationModel::setData(const QModelIndex& index, const QVariant& value, int role) {
  if (!index.isValid() || index.row() >= rows_.size() || role != ExpandedRole) return false;
  Message& m = nodes_[rows_[index.row()]];
  if (m.expanded == value.toBool()) return true;
  m.expanded = value.toBool();
  emit dataChanged(index, index, {ExpandedRole});
  return true;
}

Qt::ItemFlags ConversationModel::flags(const QModelIndex& index) const {
  return index.isValid() ? Qt::ItemIsEnabled | Qt::ItemIsSelectable : Qt::NoItemFlags;
}

QHash<int, QByteArray> ConversationModel::roleNames() const {
  auto names = QAbstractListModel::roleNames();
  names[RoleRole] = "role";
  names[TextRole] = "text";
  names[TraceRole] = "trace";
  names[StateRole] = "state";
  names[RequestIdRole] = "requestId";
  names[KeyRole] = "key";
  names[TimelineRole] = "timeline";
  names[ExpandedRole] = "expanded";
  names[BranchRole] = "branch";
  names[BranchCountRole] = "branchCount";
  names[ReceiptBadgeRole] = "receiptBadge";
  names[ReceiptProblemRole] = "receiptProblem";
  names[ReceiptFieldsRole] = "receiptFields";
  names[ReceiptJsonRole] = "receiptJson";
  return names;
}

ConversationModel::Message ConversationModel::make(const QString& role, const QString& text,
                                                   State state, int parent) {
  Message m;
  m.role = role;
  m.text = text;
  m.state = state;
  m.parent = parent;
  m.key = nextKey_++;
  return m;
}

int ConversationModel::addNode(Message m) {
  const int node = static_cast<int>(nodes_.size());
  const int parent = m.parent;
  nodes_.append(std::move(m));
  children_[parent].append(node);
  chosen_[parent] = node;
  return node;
}

QList<int> ConversationModel::path() const {
  QList<int> out;
  int at = -1;
  for (;;) {
    const auto kids = children_.constFind(at);
    if (kids == children_.cend() || kids->isEmpty()) break;
    at = chosen_.value(at, kids->back());
    if (at < 0) break;  // regenerate(): the new answer is not there yet
    out.append(at);
  }
  return out;
}

void ConversationModel::rebuildFrom(int row) {
  const QList<int> next = path();
  const int old = static_cast<int>(rows_.size());
  if (row < old) {
    beginRemoveRows({}, row, old - 1);
    rows_.resize(row);
    endRemoveRows();
  }
  if (row < next.size()) {
    beginInsertRows({}, row, static_cast<int>(next.size()) - 1);
    rows_ = next;
    endInsertRows();
  }
}

qint64 ConversationModel::storedParent(int parent) const {
  return parent >= 0 ? nodes_[parent].storeId : 0;
}

void ConversationModel::load(qint64 id) {
  for (const auto& m : std::as_const(nodes_)) {
    if (m.state == State::Waiting || m.state == State::Streaming) storeFinish(m);
  }
  beginResetModel();
  nodes_.clear();
  children_.clear();
  chosen_.clear();
  rows_.clear();
  conversationId_ = id;
  if (store_ && id > 0) {
    const QList<StoredMessage> stored = store_->messages(id);
    // Written without parents (not by this model): one message after another.
    const bool linear = std::all_of(stored.cbegin(), stored.cend(),
                                    [](const StoredMessage& s) { return s.parentId == 0; });
    QHash<qint64, int> byStoreId;
    for (const auto& s : stored) {
      const int parent =
          linear ? static_cast<int>(nodes_.size()) - 1 : byStoreId.value(s.parentId, -1);
      Message m = make(s.role, s.content, State::Complete, parent);
      m.storeId = s.id;
      const QJsonObject trace = QJsonDocument::fromJson(s.traceJson.toUtf8()).object();
      m.node = trace.value(QStringLiteral("node")).toString();
      m.lane = trace.value(QStringLiteral("lane")).toString();
      const QString line = trace.value(QStringLiteral("line")).toString();
      if (!line.isEmpty()) m.trace = line.split(kSep);
      for (const auto& e : trace.value(QStringLiteral("timeline")).toArray()) {
        m.timeline.append(e.toString());
      }
      m.started = QDateTime::fromString(trace.value(QStringLiteral("started")).toString(),
                                        Qt::ISODateWithMs);
      m.receiptJson = s.receiptJson;
      m.receipt = checkReceipt(m);
      if (s.state == MessageState::Failed) m.state = State::Failed;
      if (s.state == MessageState::Stopped || s.state == MessageState::Streaming) {
        m.state = State::Cancelled;
        if (m.trace.isEmpty()) m.trace = {tr("interrupted")};
      }
      byStoreId.insert(s.id, addNode(std::move(m)));
    }
    rows_ = path();
  }
  endResetModel();
}

void ConversationModel::appendUser(const QString& text) {
  const int parent = rows_.isEmpty() ? -1 : rows_.back();
  Message m = make(QStringLiteral("user"), text, State::Complete, parent);
  if (store_) {
    if (conversationId_ == 0) {
      conversationId_ = store_->createConversation();
      if (conversationId_ > 0) emit conversationStarted(conversationId_);
    }
    if (conversationId_ > 0) {
      m.storeId = store_->appendMessage(conversationId_, m.role, text, MessageState::Complete,
                                        storedParent(parent));
    }
  }
  addNode(std::move(m));
  rebuildFrom(static_cast<int>(rows_.size()));
}

void ConversationModel::beginAnswer(const QString& requestId) {
  const int parent = rows_.isEmpty() ? -1 : rows_.back();
  Message m = make(QStringLiteral("assistant"), {}, State::Waiting, parent);
  m.requestId = requestId;
  m.started = QDateTime::currentDateTime();
  m.clock.start();
  m.timeline = {tr("+0 ms  sent at %1").arg(m.started.toString(QStringLiteral("HH:mm:ss.zzz")))};
  if (store_ && conversationId_ > 0) {
    m.storeId = store_->appendMessage(conversationId_, m.role, {}, MessageState::Streaming,
                                      storedParent(parent));
  }
  addNode(std::move(m));
  rebuildFrom(static_cast<int>(rows_.size()));
}

bool ConversationModel::editUser(int row, const QString& text) {
  if (row < 0 || row >= rows_.size()) return false;
  const Message& old = nodes_[rows_[row]];
  if (old.role != QLatin1String("user")) return false;
  Message m = make(old.role, text, State::Complete, old.parent);
  if (store_ && conversationId_ > 0) {
    m.storeId = store_->appendMessage(conversationId_, m.role, text, MessageState::Complete,
                                      storedParent(m.parent));
  }
  addNode(std::move(m));
  rebuildFrom(row);
  return true;
}

bool ConversationModel::regenerate(int row, const QString& requestId) {
  if (row < 0 || row >= rows_.size()) return false;
  const Message& old = nodes_[rows_[row]];
  if (old.role != QLatin1String("assistant")) return false;
  const int parent = old.parent;
  // Cut the rows back to the question, then answer it again.
  chosen_[parent] = -1;
  rebuildFrom(row);
  if (rows_.size() != row) return false;
  beginAnswer(requestId);
  return true;
}

bool ConversationModel::showBranch(int row, int delta) {
  if (row < 0 || row >= rows_.size()) return false;
  const Message& m = nodes_[rows_[row]];
  const QList<int> siblings = children_.value(m.parent);
  const auto at = siblings.indexOf(rows_[row]) + delta;
  if (at < 0 || at >= siblings.size() || delta == 0) return false;
  chosen_[m.parent] = siblings[at];
  rebuildFrom(row);
  return true;
}

void ConversationModel::storeFinish(const Message& m) {
  if (!store_ || m.storeId == 0) return;
  MessageState state = MessageState::Complete;
  if (m.state == State::Failed) state = MessageState::Failed;
  if (m.state == State::Cancelled || m.state == State::Waiting || m.state == State::Streaming) {
    state = MessageState::Stopped;
  }
  QJsonObject trace;
  trace.insert(QStringLiteral("line"), m.trace.join(kSep));
  if (!m.node.isEmpty()) trace.insert(QStringLiteral("node"), m.node);
  if (!m.lane.isEmpty()) trace.insert(QStringLiteral("lane"), m.lane);
  if (m.started.isValid()) {
    trace.insert(QStringLiteral("started"), m.started.toString(Qt::ISODateWithMs));
  }
  if (!m.timeline.isEmpty()) {
    trace.insert(QStringLiteral("timeline"), QJsonArray::fromStringList(m.timeline));
  }
  store_->finishMessage(m.storeId, state,
                        QString::fromUtf8(QJsonDocument(trace).toJson(QJsonDocument::Compact)));
}

ReceiptStatus ConversationModel::checkReceipt(const Message& m) const {
  if (m.receiptJson.isEmpty() || !checker_) return {};
  return checker_(m.receiptJson, m.text);
}

int ConversationModel::nodeOf(const QString& requestId) const {
  for (int i = static_cast<int>(nodes_.size()) - 1; i >= 0; --i) {
    if (nodes_[i].requestId == requestId) return i;
  }
  return -1;
}

void ConversationModel::changed(int node) {
  const auto row = rows_.indexOf(node);
  if (row < 0) return;  // on a branch not shown
  const auto i = index(static_cast<int>(row));
  emit dataChanged(i, i);
}

void ConversationModel::event(Message& m, const QString& what) {
  const qint64 ms = m.clock.isValid() ? m.clock.elapsed() : 0;
  m.timeline.append(tr("+%1 ms  %2").arg(ms).arg(what));
}

void ConversationModel::onAccepted(const QString& requestId, int position, int etaMs) {
  const int node = nodeOf(requestId);
  if (node < 0) return;
  Message& m = nodes_[node];
  m.trace = {position > 0 ? tr("#%1 in line, about %2 s").arg(position).arg((etaMs + 999) / 1000)
                          : tr("accepted")};
  event(m, position > 0 ? tr("queued: #%1 in line, ETA %2 ms").arg(position).arg(etaMs)
                        : tr("accepted"));
  changed(node);
}

void ConversationModel::onRouted(const QString& requestId, const QString& node,
                                 const QString& lane) {
  const int n = nodeOf(requestId);
  if (n < 0) return;
  Message& m = nodes_[n];
  m.node = node;
  m.lane = lane;
  m.trace = {where(node, lane)};
  event(m, lane.isEmpty() ? tr("routed to %1").arg(node)
                          : tr("routed to %1 (%2 lane)").arg(node, lane));
  changed(n);
}

void ConversationModel::onToken(const QString& requestId, int index, const QString& text) {
  const int node = nodeOf(requestId);
  if (node < 0) return;
  Message& m = nodes_[node];
  if (index != m.nextIndex) return;
  if (m.state != State::Waiting && m.state != State::Streaming) return;  // stopped already
  if (index == 0) event(m, tr("first token"));
  m.text += text;
  m.nextIndex = index + 1;
  m.state = State::Streaming;
  if (store_ && m.storeId > 0) store_->appendToMessage(m.storeId, text);
  changed(node);
}

void ConversationModel::onRedirected(const QString& requestId, const QString& from,
                                     const QString& to, const QString& reason) {
  const int node = nodeOf(requestId);
  if (node < 0) return;
  Message& m = nodes_[node];
  m.node = to;
  m.trace.append(tr("redirected %1 → %2: %3").arg(from, to, reason));
  event(m, tr("redirected %1 → %2 after %3 tokens: %4").arg(from, to).arg(m.nextIndex).arg(reason));
  changed(node);
}

void ConversationModel::onDegraded(const QString& requestId, const QString& reason) {
  const int node = nodeOf(requestId);
  if (node < 0) return;
  Message& m = nodes_[node];
  m.trace.append(tr("shortened: %1").arg(reason));
  event(m, tr("shortened: %1").arg(reason));
  changed(node);
}

void ConversationModel::onFinished(const QString& requestId, const AnswerSummary& s) {
  const int node = nodeOf(requestId);
  if (node < 0) return;
  Message& m = nodes_[node];
  if (m.state != State::Waiting && m.state != State::Streaming) return;
  const bool cancelled = s.finishReason == QLatin1String("cancelled");
  m.state = cancelled ? State::Cancelled : State::Complete;
  QStringList trace;
  if (!m.node.isEmpty()) trace.append(where(m.node, m.lane));
  for (const auto& t : std::as_const(m.trace)) {
    if (t.startsWith(tr("redirected")) || t.startsWith(tr("shortened"))) trace.append(t);
  }
  if (s.queueMs >= 1) trace.append(tr("waited %1 ms").arg(qRound(s.queueMs)));
  if (!cancelled || s.ttftMs > 0) trace.append(tr("TTFT %1 ms").arg(qRound(s.ttftMs)));
  if (s.tokensPerSecond > 0) trace.append(tr("%1 tok/s").arg(s.tokensPerSecond, 0, 'f', 1));
  if (cancelled) trace.append(tr("stopped"));
  m.trace = trace;
  if (!s.receiptJson.isEmpty()) {
    m.receiptJson = s.receiptJson;
    m.receipt = checkReceipt(m);
    event(m, m.receipt.badge == ReceiptBadge::Verified
                 ? tr("receipt verified")
                 : tr("receipt does not verify: %1").arg(m.receipt.problem));
    if (store_ && m.storeId > 0) store_->setReceipt(m.storeId, m.receiptJson);
  }
  if (cancelled) {
    event(m, tr("stopped after %1 tokens").arg(m.nextIndex));
  } else {
    event(m, tr("done (%1): %2 prompt + %3 answer tokens; queue %4 ms, TTFT %5 ms, total %6 ms, "
                "%7 tok/s")
                 .arg(s.finishReason.isEmpty() ? tr("stop") : s.finishReason)
                 .arg(s.promptTokens)
                 .arg(s.completionTokens)
                 .arg(qRound(s.queueMs))
                 .arg(qRound(s.ttftMs))
                 .arg(qRound(s.totalMs))
                 .arg(s.tokensPerSecond, 0, 'f', 1));
  }
  storeFinish(m);
  changed(node);
}

void ConversationModel::onFailed(const QString& requestId, const QString& message) {
  const int node = nodeOf(requestId);
  if (node < 0) return;
  Message& m = nodes_[node];
  if (m.state != State::Waiting && m.state != State::Streaming) return;
  m.state = State::Failed;
  m.trace = {tr("failed: %1").arg(message)};
  event(m, tr("failed: %1").arg(message));
  storeFinish(m);
  changed(node);
}

QList<ChatTurn> ConversationModel::turnsBefore(int row) const {
  QList<ChatTurn> out;
  for (int r = 0; r < row && r < rows_.size(); ++r) {
    const Message& m = nodes_[rows_[r]];
    if (m.state == State::Failed || (m.role == QLatin1String("assistant") && m.text.isEmpty())) {
      continue;
    }
    out.append({m.role, m.text});
  }
  return out;
}

bool ConversationModel::busy() const {
  for (const auto& m : nodes_) {
    if (m.state == State::Waiting || m.state == State::Streaming) return true;
  }
  return false;
}

int ConversationModel::lastAnswerRow() const {
  for (int r = static_cast<int>(rows_.size()) - 1; r >= 0; --r) {
    if (nodes_[rows_[r]].role == QLatin1String("assistant")) return r;
  }
  return -1;
}

}  // namespace tidelane::ui
