// ConversationModel: the messages of one conversation, as a list model the chat view
// shows. Assistant messages grow token by token and carry a routing trace: a one-line
// summary (TraceRole) and the full event timeline with times (TimelineRole).
//
// Branches: a conversation is a tree (every message names its parent). Editing a user
// message adds a sibling of it; regenerating an answer adds a sibling of that answer. The
// rows are one path through the tree: at every fork the newest branch unless another was
// chosen with showBranch(); BranchRole/BranchCountRole tell where a row stands ("‹ 1/2 ›").
//
// With a ConversationStore set, everything is recorded as it happens: the first user
// message starts a stored conversation (conversationStarted), every message is stored with
// its parent, each answer is stored as streaming and grows with its tokens, and ends
// complete, stopped or failed with its trace (a JSON object: "line", "node", "lane",
// "timeline", "started"); load() shows a stored conversation, newest branches first (a
// conversation stored with no parents at all, e.g. imported, is read as one line).
//
// Receipts: an answer that came with a signed receipt keeps it (stored with the message) and
// shows its badge (ReceiptBadgeRole), checked by the ReceiptChecker the app sets, when the
// answer finishes and again whenever it is loaded. Without a checker no badge is shown.
//
// Threading: GUI thread only. The store is not owned and must outlive the model.
#pragma once

#include <QAbstractListModel>
#include <QDateTime>
#include <QElapsedTimer>
#include <QHash>
#include <QList>
#include <QString>
#include <QStringList>

#include "ui/chat_backend.h"
#include "ui/conversation_store.h"
#include "ui/receipt_status.h"

namespace tidelane::ui {

class ConversationModel : public QAbstractListModel {
  Q_OBJECT

 public:
  enum Role {
    RoleRole = Qt::UserRole + 1,  // "user", "assistant" or "system"
    TextRole,
    TraceRole,  // "#3 in line, about 5 s", then "node-a (mixed) · TTFT 120 ms · 40 tok/s"
    StateRole,  // State below
    RequestIdRole,
    KeyRole,          // quint64, unique to a message for the model's lifetime (caches key on it)
    TimelineRole,     // QStringList: "+12 ms  routed to node-a (mixed)", one line per event
    ExpandedRole,     // bool, settable: the timeline is shown under the trace line
    BranchRole,       // 1-based position of this message among its siblings
    BranchCountRole,  // how many siblings (1: no fork here)
    // The answer's receipt: its badge (ReceiptBadge as int: None when it has no receipt), which
    // check failed (QString), what was signed ("field: value" lines) and the JSON as received.
    ReceiptBadgeRole,
    ReceiptProblemRole,
    ReceiptFieldsRole,
    ReceiptJsonRole,
  };
  enum class State { Complete, Waiting, Streaming, Failed, Cancelled };
  Q_ENUM(State)

  using QAbstractListModel::QAbstractListModel;

  // Where messages are recorded; null keeps them in memory only.
  void setStore(ConversationStore* store) { store_ = store; }
  ConversationStore* store() const { return store_; }
  // How receipts are checked (the app's, built on router/receipt); unset, none are shown.
  void setReceiptChecker(ReceiptChecker checker) { checker_ = std::move(checker); }
  // The stored conversation shown (0: a new chat, stored with its first message).
  qint64 conversationId() const { return conversationId_; }
  // Shows conversation `id` from the store (0: a new, empty chat). Answers still coming in
  // are recorded as stopped first; the caller cancels their requests.
  void load(qint64 id);

  int rowCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  bool setData(const QModelIndex& index, const QVariant& value, int role) override;
  Qt::ItemFlags flags(const QModelIndex& index) const override;
  QHash<int, QByteArray> roleNames() const override;

  void appendUser(const QString& text);
  // Adds an empty assistant message after the last row that the events of `requestId` fill.
  void beginAnswer(const QString& requestId);
  // Replaces user message `row` by `text` as a new branch (the old one stays reachable);
  // the rows after it go (they belong to the old branch). Returns false if `row` is not a
  // user message. Send turns() and call beginAnswer() next.
  bool editUser(int row, const QString& text);
  // Starts a new answer to the same question as answer `row`, as a sibling of it shown in
  // its place (rows after it go). Send turnsBefore(row) first and pass the request id.
  bool regenerate(int row, const QString& requestId);
  // Shows the sibling `delta` steps from row's message (-1: previous branch, +1: next).
  bool showBranch(int row, int delta);

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

  // The conversation shown as turns for the next request (failed answers left out).
  QList<ChatTurn> turns() const { return turnsBefore(rowCount()); }
  // The turns of the rows before `row`.
  QList<ChatTurn> turnsBefore(int row) const;
  // True while some answer is still coming in.
  bool busy() const;
  // The row of the newest assistant message shown (-1: none).
  int lastAnswerRow() const;

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
    // The timeline: the time the request started and an entry per event.
    QDateTime started;
    QElapsedTimer clock;
    QStringList timeline;
    bool expanded = false;
    int parent = -1;  // index into nodes_, -1 for a first message
    qint64 storeId = 0;
    quint64 key = 0;
    QString receiptJson;
    ReceiptStatus receipt;
  };
  Message make(const QString& role, const QString& text, State state, int parent);
  // Adds `m` to the tree, chosen at its fork; returns its index in nodes_.
  int addNode(Message m);
  // The path from the chosen first message down the chosen children.
  QList<int> path() const;
  // Replaces rows from `row` on by the chosen path.
  void rebuildFrom(int row);
  int nodeOf(const QString& requestId) const;
  void changed(int node);
  void event(Message& m, const QString& what);
  // Records the end of a stored answer.
  void storeFinish(const Message& m);
  qint64 storedParent(int parent) const;

  ReceiptStatus checkReceipt(const Message& m) const;

  ConversationStore* store_ = nullptr;
  ReceiptChecker checker_;
  qint64 conversationId_ = 0;
  quint64 nextKey_ = 1;
  QList<Message> nodes_;             // every message of every branch, in creation order
  QHash<int, QList<int>> children_;  // parent (-1: none) → children, oldest first
  QHash<int, int> chosen_;           // parent → the child shown
  QList<int> rows_;                  // the nodes shown
};

}  // namespace tidelane::ui
