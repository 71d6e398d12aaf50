// MessageDelegate: paints one message of a ConversationModel: who, the text wrapped to the
// view's width, and the routing trace in a smaller line beneath. Assistant messages are
// Markdown (headings, lists, tables, links, code: code in a monospace font on a tinted
// background); user messages are plain text.
//
// Rendering is lazy and cached: a message's laid-out QTextDocument is built the first time
// the row is painted and kept per message (ConversationModel::KeyRole) and width; rows
// never painted are sized by an estimate (font metrics, no text shaping, kept per message)
// until they are (MessageListView renders rows as they come into view). A growing answer is
// re-rendered at most every kRerenderMs, when the list measures it (paint shows the last
// rendering), and only from its last finished Markdown block on;
// the newest text is always shown within that time. Only the part of a message inside the
// viewport and the painter's clip is drawn, and the list repaints a growing answer only from the
// block it was re-rendered from (takeChangedFrom). docs/benchmarks/app.md has the figures.
//
// When a growing answer ends it is rendered whole (exactly as a stored answer) on a worker
// thread: the Markdown parsed, styled and laid out to the row's width there (7-11 ms at 12,000
// characters, which on the GUI thread made the longest stall of a stream), then swapped in on
// the GUI thread, which asks the view to measure and repaint the row (sizeHintChanged). Until
// then the row shows its last growing rendering.
//
// Under every message a row of small links: "‹ 1/2 ›" where the message has siblings
// (ConversationModel::BranchCountRole), Copy, and Edit (user) or Regenerate (answers).
// The routing trace line is a link too (▸/▾): it shows or hides the answer's timeline
// (ConversationModel::ExpandedRole, TimelineRole). An answer with a signed receipt has a badge
// first in its links row, right under the trace line: "✓ verified" or "✗ receipt invalid"
// (ReceiptBadgeRole); clicking it asks for the receipt (ShowReceipt). Each code block has a Copy
// link at its top right. Clicks are reported with actionTriggered; the delegate changes nothing
// itself.
//
// Threading: GUI thread only (its worker thread only builds documents it does not share).
#pragma once

#include <QPersistentModelIndex>
#include <QStyledItemDelegate>
#include <QThreadPool>
#include <QTimer>
#include <memory>
#include <optional>
#include <unordered_map>

class QTextBlock;
class QTextDocument;

namespace tidelane::ui {

class MessageDelegate : public QStyledItemDelegate {
  Q_OBJECT

 public:
  static constexpr int kRerenderMs = 50;

  enum class Action {
    None,
    Copy,
    Edit,
    Regenerate,
    PreviousBranch,
    NextBranch,
    ToggleTrace,
    CopyCode,
    ShowReceipt
  };
  Q_ENUM(Action)

  explicit MessageDelegate(QObject* parent = nullptr);
  ~MessageDelegate() override;

  void paint(QPainter* painter, const QStyleOptionViewItem& option,
             const QModelIndex& index) const override;
  QSize sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const override;

  // `markdown` as a document styled for a message: code in a fixed-pitch font on a tinted
  // background, tables with borders. `font` is the body font.
  static std::unique_ptr<QTextDocument> renderMarkdown(const QString& markdown, const QFont& font,
                                                       const QPalette& palette);
  // The document the row shows now (rendering it if needed), laid out to `option`'s width.
  const QTextDocument* document(const QStyleOptionViewItem& option, const QModelIndex& index) const;
  // Whether the row has a rendering (else sizeHint gives an estimate).
  bool isRendered(const QModelIndex& index) const;
  // How many documents were built (tests and benchmarks watch laziness with it).
  int renderCount() const { return renders_; }
  // How many of them were finished answers built on the worker thread and swapped in.
  int backgroundRenderCount() const { return backgroundRenders_; }
  // Whether a finished answer's whole rendering is being built on the worker thread.
  bool isRenderPending(const QModelIndex& index) const;
  // Where the row's rendering changed since this was last asked, as a y within the row laid out
  // to `option` (0: the whole row); nullopt when it has not changed. A growing answer re-rendered
  // from its last finished block on keeps its pixels above that block, so the list repaints
  // only the strip below it (the whole row filled the viewport at each kRerenderMs).
  std::optional<int> takeChangedFrom(const QStyleOptionViewItem& option,
                                     const QModelIndex& index) const;
  // What a click at `pos` (viewport coordinates) on row `index` would do; for CopyCode,
  // `code` (when given) receives the code block's text.
  Action actionAt(const QStyleOptionViewItem& option, const QModelIndex& index, QPoint pos,
                  QString* code = nullptr) const;

 signals:
  void actionTriggered(const QModelIndex& index, tidelane::ui::MessageDelegate::Action action,
                       const QString& code);

 protected:
  bool editorEvent(QEvent* event, QAbstractItemModel* model, const QStyleOptionViewItem& option,
                   const QModelIndex& index) override;

 private:
  struct Entry {
    QString text;
    int state = -1;
    qint64 renderedAt = 0;
    std::unique_ptr<QTextDocument> doc;
    int reportedHeight = -1;  // the height sizeHint last gave for this row
    // A growing answer: the Markdown up to its last finished block, already in `doc` up to
    // position stableDocEnd (-1: `doc` was rendered whole).
    QString stableText;
    int stableDocEnd = -1;
    // The document position from which the rendering changed since takeChangedFrom last asked
    // (0: all of it; -1: nothing).
    int changedFrom = 0;
    // The finished answer's whole rendering being built on the worker thread, for this text
    // and state (pendingState -1: none); the row to measure again when it comes.
    QString pendingText;
    int pendingState = -1;
    QPersistentModelIndex pendingIndex;
    // What sizeHint's last full layout depended on, and the height it gave.
    struct Size {
      qreal docHeight = -1;
      int width = -1;
      QString trace;
      bool expanded = false;
      int height = -1;
    } size;
  };
  struct Layout {
    QRect bubble, who, text, trace, timeline, actions;
    QList<std::pair<Action, QRect>> links;  // the clickable words of the actions row
    QString branchLabel;                    // "1/2", empty without siblings
  };
  struct CodeBlock {
    QRect copy;  // the Copy link, in viewport coordinates
    QString text;
  };
  // The code-block tint, monospace and table borders, from block `from` on.
  static void style(QTextDocument* doc, const QTextBlock& from, const QFont& font,
                    const QPalette& palette);
  // Where the Markdown from `from` on can be cut with what follows parsed alone: after its last
  // blank line outside fenced code (`from` when there is none).
  static int stableEnd(const QString& markdown, int from);
  // Returns the document position from which the rendering changed (0 when it started over).
  int renderGrowing(Entry& e, const QString& markdown, const QFont& font,
                    const QPalette& palette) const;
  // Renders the finished answer `text` whole on the worker thread, laid out to `option`'s
  // width; finishRender swaps it in (GUI thread) if the row still wants it.
  void renderInBackground(Entry& e, quint64 key, const QModelIndex& index, const QString& text,
                          int state, const QStyleOptionViewItem& option) const;
  void finishRender(quint64 key, const QString& text, int state,
                    std::unique_ptr<QTextDocument> doc) const;
  QList<CodeBlock> codeBlocks(const Layout& l, const QTextDocument* doc, const QFont& font) const;
  Layout layout(const QStyleOptionViewItem& option, const QModelIndex& index,
                const QTextDocument* doc) const;
  int contentWidth(const QStyleOptionViewItem& option) const;
  // The height of a row never painted, from its length and line breaks: sizeHint is asked
  // for every row of the conversation when the list lays out, so this must not shape text.
  int estimatedHeight(const QStyleOptionViewItem& option, const QModelIndex& index) const;
  // The row's cache entry, rendered if `render` (else null when never rendered); `painting`:
  // for paint, which leaves a growing answer as last rendered.
  Entry* entry(const QStyleOptionViewItem& option, const QModelIndex& index, bool render,
               bool painting = false) const;

  mutable std::unordered_map<quint64, Entry> cache_;
  mutable QList<QPersistentModelIndex> stale_;
  mutable QTimer refresh_;
  mutable int renders_ = 0;
  mutable int backgroundRenders_ = 0;
  // One worker: finished answers are rendered one after another. Destroyed (waited for) first.
  mutable QThreadPool pool_;
  // Font metrics estimatedHeight uses, measured once per body font.
  struct Metrics {
    QFont font;
    int width = 0;  // contentWidth the estimates were made for
    int who = 0, line = 0, averageChar = 1, trace = 0, traceLine = 0;
  };
  mutable Metrics metrics_;
  // Per message (KeyRole): the text length an estimate was made for, and the estimate.
  mutable std::unordered_map<quint64, std::pair<qsizetype, int>> estimates_;
};

}  // namespace tidelane::ui
