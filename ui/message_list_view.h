// MessageListView: the chat's message list, a vertical list of rows of different heights that
// lays out one row at a time.
//
// QListView (list mode, rows of different heights) lays out *every* row again whenever one row's
// size hint changes: ~1 µs a row, 10-30 ms in a conversation of 10,000 messages, at each step of
// a streaming answer (it grows every MessageDelegate::kRerenderMs) and at each scroll step (rows
// painted for the first time turn out taller or shorter than estimated). This view keeps each
// row's height in a Fenwick tree of prefix sums: a row that changes height costs O(log n), a
// point finds its row in O(log n), and only the rows on screen are ever painted or rendered.
// All rows are measured (the delegate's size hint: an estimate for rows never shown) only when
// the whole list changes: a new model or conversation (reset), a new width or font, a new
// delegate (doItemsLayout()).
//
// What changes a row's height, and what it costs:
// - the model's dataChanged for a row: that row is asked again (a streaming answer's changes are
//   coalesced: asked again at most every MessageDelegate::kRerenderMs, when the delegate renders
//   a growing answer anew, and not repainted at each token); what is on screen above the block
//   the delegate re-rendered from is scrolled along with the list rather than painted again
//   (MessageDelegate::takeChangedFrom), so each re-render paints only the answer's newest lines;
// - the delegate's sizeHintChanged(index): that row only (QAbstractItemView would lay out all);
// - scrolling: the rows that come into view are rendered (MessageDelegate::document) and
//   measured before they are painted, and those a page above and below are rendered and measured
//   while the event loop is idle, one per turn; a row above the viewport that changes height
//   moves the scroll position with it, so what is on screen stays put (and is not repainted);
// - rows inserted or removed: only those rows are measured (the tree is rebuilt, O(n) additions).
//
// A QListView by type (Qt's accessibility gives it the list interface, QAccessibleList, which asks
// visualRect/indexAt; code that looks for a QListView finds it), but everything QListView lays
// out, scrolls and paints itself is replaced here: its own layout (QListViewPrivate) is never
// run. List mode, top to bottom, one column, no hidden rows, no drag and drop, no wrapping.
// Scrolling is per pixel; keys Up/Down, PageUp/PageDown, Home/End scroll by pixels (a message can
// be taller than the viewport). Threading: GUI thread only.
#pragma once

#include <QListView>
#include <QSet>
#include <QTimer>
#include <vector>

namespace tidelane::ui {

class MessageListView : public QListView {
  Q_OBJECT

 public:
  explicit MessageListView(QWidget* parent = nullptr);

  // Use this rather than setItemDelegate: the delegate's sizeHintChanged then updates that one
  // row (QAbstractItemView lays out every row on it).
  void setMessageDelegate(QAbstractItemDelegate* delegate);

  QRect visualRect(const QModelIndex& index) const override;
  void scrollTo(const QModelIndex& index, ScrollHint hint = EnsureVisible) override;
  QModelIndex indexAt(const QPoint& point) const override;
  // Measures every row again (a new delegate, width or font).
  void doItemsLayout() override;
  void reset() override;
  void setModel(QAbstractItemModel* model) override;

  // Keeps the list at its end while it grows (an answer streaming in, a row measured taller
  // than estimated) as long as the user's last scroll left it there (within 4 px). Whether it was
  // at the end is remembered from the last scroll rather than checked at each change, since the
  // list grows between scrolls. Off by default.
  void setFollowsEnd(bool follow) { followsEnd_ = follow; }

  // The height of the whole list, in pixels.
  int contentHeight() const { return total_; }
  // How many times every row was measured (full layouts), for tests and benchmarks.
  int fullLayouts() const { return fullLayouts_; }

 protected:
  QModelIndex moveCursor(CursorAction action, Qt::KeyboardModifiers modifiers) override;
  int horizontalOffset() const override { return 0; }
  int verticalOffset() const override;
  bool isIndexHidden(const QModelIndex&) const override { return false; }
  void setSelection(const QRect& rect, QItemSelectionModel::SelectionFlags command) override;
  QRegion visualRegionForSelection(const QItemSelection& selection) const override;
  void updateGeometries() override;
  void scrollContentsBy(int dx, int dy) override;
  void paintEvent(QPaintEvent* event) override;
  void resizeEvent(QResizeEvent* event) override;
  void keyPressEvent(QKeyEvent* event) override;
  void dataChanged(const QModelIndex& topLeft, const QModelIndex& bottomRight,
                   const QList<int>& roles = QList<int>()) override;
  void rowsInserted(const QModelIndex& parent, int start, int end) override;
  void rowsAboutToBeRemoved(const QModelIndex& parent, int start, int end) override;
  void currentChanged(const QModelIndex& current, const QModelIndex& previous) override;
  void selectionChanged(const QItemSelection& selected, const QItemSelection& deselected) override;
  QSize viewportSizeHint() const override;

 private:
  // The rows' heights and their prefix sums (a Fenwick tree).
  void rebuildTree();
  void addToTree(int row, int delta);
  int top(int row) const;   // sum of the heights of rows before `row`
  int rowAtY(int y) const;  // the row at content y (rowCount() when past the end)
  int rowCount() const { return static_cast<int>(heights_.size()); }
  bool layoutPending() const;
  void ensureLaidOut() const;
  // The delegate's size hint for `row` (its height; at least 1).
  int measure(int row, const QStyleOptionViewItem& option) const;
  QStyleOptionViewItem rowOption() const;
  // Sets the heights of `rows` from the delegate; keeps what is on screen in place when rows
  // above it change. Returns whether any height changed.
  bool remeasure(const QList<int>& rows);
  // Renders and measures the rows on screen (until their heights hold); returns whether any
  // height changed.
  bool measureVisible();
  void flushPending();
  // Renders the rows a page above and below the screen, one per turn of the event loop.
  void schedulePrefetch();
  void prefetchOne();
  void onSizeHintChanged(const QModelIndex& index);
  void onRowsRemoved(const QModelIndex& parent, int start, int end);

  std::vector<int> heights_;
  std::vector<int> tree_;  // 1-based Fenwick tree over heights_
  int total_ = 0;
  int fullLayouts_ = 0;
  bool measuring_ = false;
  bool adjusting_ = false;  // the scroll position is being moved to keep the content in place
  int laidOutWidth_ = -1;
  // remeasure() leaves the repaint to its caller (flushPending), saying whether it wanted one.
  bool deferRepaint_ = false;
  bool repaintWanted_ = false;
  QSet<int> pending_;  // streaming rows changed since they were last measured
  QTimer pendingTimer_;
  QList<int> prefetch_;  // rows to render while idle, nearest first
  QTimer prefetchTimer_;
  bool followsEnd_ = false;
  bool atEnd_ = true;  // the user's last scroll left the list at its end
};

}  // namespace tidelane::ui
