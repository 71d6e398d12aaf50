#include "ui/message_list_view.h"

#include <QAccessible>
#include <QKeyEvent>
#include <QPainter>
#include <QScrollBar>

#include "ui/conversation_model.h"
#include "ui/message_delegate.h"

// The view calls QAbstractItemView's own implementations where QListView overrides them:
// QListView's layout is what it replaces (the header), so its overrides are passed over on purpose.
// NOLINTBEGIN(bugprone-parent-virtual-call)
namespace tidelane::ui {

// QListView's own overrides lay out, scroll and paint through its private layout, which this view
// never runs: they are bypassed by calling QAbstractItemView's directly.
MessageListView::MessageListView(QWidget* parent) : QListView(parent) {
  setViewMode(ListMode);
  setFlow(TopToBottom);
  setWrapping(false);
  setUniformItemSizes(false);
  setVerticalScrollMode(ScrollPerPixel);
  setHorizontalScrollMode(ScrollPerPixel);
  setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  // Rows a page above and below the screen are rendered while the loop is idle, one per turn, so
  // that a scroll step mostly paints (the rows it brings into view were rendered already).
  prefetchTimer_.setSingleShot(true);
  prefetchTimer_.setInterval(0);
  connect(&prefetchTimer_, &QTimer::timeout, this, &MessageListView::prefetchOne);
  pendingTimer_.setSingleShot(true);
  pendingTimer_.setInterval(MessageDelegate::kRerenderMs);
  connect(&pendingTimer_, &QTimer::timeout, this, &MessageListView::flushPending);
  QScrollBar* bar = verticalScrollBar();
  connect(bar, &QScrollBar::valueChanged, this,
          [this, bar](int value) { atEnd_ = value >= bar->maximum() - 4; });
  connect(bar, &QScrollBar::rangeChanged, this, [this] {
    if (followsEnd_ && atEnd_) scrollToBottom();
  });
}

void MessageListView::setMessageDelegate(QAbstractItemDelegate* delegate) {
  setItemDelegate(delegate);
  if (!delegate) return;
  // QAbstractItemView connects sizeHintChanged to doItemsLayout (every row): only that row.
  disconnect(delegate, &QAbstractItemDelegate::sizeHintChanged, this, nullptr);
  connect(delegate, &QAbstractItemDelegate::sizeHintChanged, this,
          &MessageListView::onSizeHintChanged);
}

// ---- the heights ----------------------------------------------------------------------------

void MessageListView::rebuildTree() {
  const int n = rowCount();
  tree_.assign(n + 1, 0);
  total_ = 0;
  for (int i = 1; i <= n; ++i) {
    tree_[i] += heights_[i - 1];
    total_ += heights_[i - 1];
    const int j = i + (i & -i);
    if (j <= n) tree_[j] += tree_[i];
  }
}

void MessageListView::addToTree(int row, int delta) {
  heights_[row] += delta;
  total_ += delta;
  for (int i = row + 1; i < static_cast<int>(tree_.size()); i += i & -i) tree_[i] += delta;
}

int MessageListView::top(int row) const {
  int sum = 0;
  for (int i = std::min(row, rowCount()); i > 0; i -= i & -i) sum += tree_[i];
  return sum;
}

int MessageListView::rowAtY(int y) const {
  if (y < 0) return -1;
  const int n = rowCount();
  int pos = 0;
  int step = 1;
  while (step * 2 <= n) step *= 2;
  for (; step > 0; step /= 2) {
    if (pos + step <= n && tree_[pos + step] <= y) {
      pos += step;
      y -= tree_[pos];
    }
  }
  return pos;  // the first row whose bottom is below y
}

bool MessageListView::layoutPending() const {
  return model() && model()->rowCount(rootIndex()) != rowCount();
}

void MessageListView::ensureLaidOut() const {
  if (layoutPending()) const_cast<MessageListView*>(this)->executeDelayedItemsLayout();
  // A layout scheduled but not yet run finds the rows already counted: nothing to do then.
  if (layoutPending()) const_cast<MessageListView*>(this)->doItemsLayout();
}

QStyleOptionViewItem MessageListView::rowOption() const {
  QStyleOptionViewItem option;
  initViewItemOption(&option);
  option.rect = QRect(0, 0, viewport()->width(), 0);
  return option;
}

int MessageListView::measure(int row, const QStyleOptionViewItem& option) const {
  const QModelIndex index = model()->index(row, 0, rootIndex());
  QAbstractItemDelegate* delegate = itemDelegateForIndex(index);
  if (!delegate) return 1;
  return std::max(1, delegate->sizeHint(option, index).height());
}

void MessageListView::doItemsLayout() {
  heights_.clear();
  if (model()) {
    const int n = model()->rowCount(rootIndex());
    heights_.resize(n);
    const QStyleOptionViewItem option = rowOption();
    for (int r = 0; r < n; ++r) heights_[r] = measure(r, option);
  }
  rebuildTree();
  pending_.clear();
  ++fullLayouts_;
  laidOutWidth_ = viewport()->width();
  QAbstractItemView::doItemsLayout();  // updateGeometries and a repaint
  measureVisible();
  schedulePrefetch();
}

void MessageListView::reset() {
  heights_.clear();
  tree_.assign(1, 0);
  total_ = 0;
  pending_.clear();
  prefetch_.clear();
  QListView::reset();  // clears QListView's (unused) layout; schedules doItemsLayout
}

bool MessageListView::remeasure(const QList<int>& rows) {
  if (rows.isEmpty() || layoutPending()) return false;
  const QStyleOptionViewItem option = rowOption();
  QScrollBar* bar = verticalScrollBar();
  const int offset = bar->value();
  const int bottom = offset + viewport()->height();
  const int first = rowAtY(offset);
  int above = 0;  // how much the rows above the one at the top of the viewport grew
  bool changed = false;
  bool shown = false;  // a row on screen changed height
  for (const int r : rows) {
    if (r < 0 || r >= rowCount()) continue;
    const int delta = measure(r, option) - heights_[r];
    if (delta == 0) continue;
    changed = true;
    if (r < first) {
      above += delta;
    } else if (top(r) < bottom) {
      shown = true;
    }
    addToTree(r, delta);
  }
  if (!changed) return false;
  adjusting_ = true;
  updateGeometries();
  // What is on screen stays where it is, unless the range change moved it already (the chat
  // following its newest text, or the end of the list coming up).
  const bool moved = bar->value() != offset;
  if (above != 0 && !moved) bar->setValue(offset + above);
  adjusting_ = false;
  // Rows above the screen that changed, with the scroll position moved by as much (here, or by the
  // chat following its newest text), and rows below it change nothing on screen.
  if (shown || bar->value() != offset + above) {
    if (deferRepaint_) {
      repaintWanted_ = true;
    } else {
      viewport()->update();
    }
  }
  return true;
}

void MessageListView::schedulePrefetch() {
  if (!qobject_cast<MessageDelegate*>(itemDelegate()) || layoutPending() || rowCount() == 0) return;
  const int offset = verticalScrollBar()->value();
  const int view = viewport()->height();
  const int first = std::max(0, rowAtY(offset));
  const int last = std::min(rowCount() - 1, rowAtY(offset + view));
  // The page above and the page below, nearest rows first.
  prefetch_.clear();
  const int up = std::max(0, rowAtY(std::max(0, offset - view)));
  const int down = std::min(rowCount() - 1, rowAtY(offset + 2 * view));
  for (int i = 1; first - i >= up || last + i <= down; ++i) {
    if (first - i >= up) prefetch_.append(first - i);
    if (last + i <= down) prefetch_.append(last + i);
  }
  if (!prefetch_.isEmpty()) prefetchTimer_.start();
}

void MessageListView::prefetchOne() {
  auto* messages = qobject_cast<MessageDelegate*>(itemDelegate());
  if (!messages || layoutPending()) {
    prefetch_.clear();
    return;
  }
  // One row per turn of the event loop: input and paints come between.
  while (!prefetch_.isEmpty()) {
    const int r = prefetch_.takeFirst();
    if (r < 0 || r >= rowCount()) continue;
    const QModelIndex index = model()->index(r, 0, rootIndex());
    if (messages->isRendered(index)) continue;
    messages->document(rowOption(), index);
    remeasure({r});
    break;
  }
  if (!prefetch_.isEmpty()) prefetchTimer_.start();
}

bool MessageListView::measureVisible() {
  if (measuring_ || !model() || layoutPending() || rowCount() == 0) return false;
  auto* messages = qobject_cast<MessageDelegate*>(itemDelegate());
  measuring_ = true;
  bool any = false;
  // Measuring may move the rows (and, at the end of the list, the scroll position): again
  // until the rows on screen hold their heights.
  for (int pass = 0; pass < 3; ++pass) {
    const QStyleOptionViewItem option = rowOption();
    const int offset = verticalScrollBar()->value();
    const int bottom = offset + viewport()->height();
    QList<int> rows;
    for (int r = std::max(0, rowAtY(offset)); r < rowCount() && top(r) < bottom; ++r) {
      // Rows never shown are sized by an estimate: render them now, so they are painted at
      // their real height rather than painted, measured and laid out again.
      // (Rows rendered already are only measured: the delegate renders a growing answer again
      // when it is due.)
      const QModelIndex index = model()->index(r, 0, rootIndex());
      if (messages && !messages->isRendered(index)) messages->document(option, index);
      rows.append(r);
    }
    // (A scroll this causes, e.g. to follow the newest text, only repaints: the next pass
    // measures what it brought into view.)
    if (!remeasure(rows)) break;
    any = true;
  }
  measuring_ = false;
  return any;
}

void MessageListView::onSizeHintChanged(const QModelIndex& index) {
  if (!index.isValid() || index.model() != model() || index.parent() != rootIndex()) return;
  // Also a new rendering of the same height (a finished answer swapped in): repainted.
  if (!remeasure({index.row()})) viewport()->update(visualRect(index));
}

// ---- model changes --------------------------------------------------------------------------

void MessageListView::dataChanged(const QModelIndex& topLeft, const QModelIndex& bottomRight,
                                  const QList<int>& roles) {
  if (topLeft.isValid() && topLeft == bottomRight && topLeft.parent() == rootIndex() &&
      !layoutPending() &&
      topLeft.data(ConversationModel::StateRole).value<ConversationModel::State>() ==
          ConversationModel::State::Streaming) {
    // A token (200 a second): the delegate shows a new rendering at most every kRerenderMs, so
    // the row is measured and repainted then, not at every token (QAbstractItemView would
    // repaint it at each: most of the GUI thread, for the same pixels).
    pending_.insert(topLeft.row());
    if (!pendingTimer_.isActive()) pendingTimer_.start();
    return;
  }
  QAbstractItemView::dataChanged(topLeft, bottomRight, roles);
  if (!topLeft.isValid() || topLeft.parent() != rootIndex() || layoutPending()) return;
  const int last = std::min(bottomRight.row(), rowCount() - 1);
  if (last - topLeft.row() > 1000) {
    doItemsLayout();
    return;
  }
  QList<int> rows;
  for (int r = topLeft.row(); r <= last; ++r) {
    rows.append(r);
    pending_.remove(r);
  }
  if (!remeasure(rows)) {
    for (const int r : rows) viewport()->update(visualRect(model()->index(r, 0, rootIndex())));
  }
}

void MessageListView::flushPending() {
  QList<int> rows(pending_.begin(), pending_.end());
  pending_.clear();
  auto* messages = qobject_cast<MessageDelegate*>(itemDelegate());
  QScrollBar* bar = verticalScrollBar();
  const int offset = bar->value();
  if (rows.size() == 1 && messages && !layoutPending() && rows.first() < rowCount() &&
      rows.first() >= rowAtY(offset)) {
    // The usual case, a growing answer on screen re-rendered from its last finished block on:
    // what is above that block only moves (by as much as the list followed the newest text), so
    // it is scrolled rather than painted again, and only the strip from that block down is
    // painted (the whole viewport was, every kRerenderMs: most of the GUI thread's own work
    // while an answer streams).
    const int r = rows.first();
    repaintWanted_ = false;
    deferRepaint_ = true;
    const bool changed = remeasure(rows);
    deferRepaint_ = false;
    const QModelIndex index = model()->index(r, 0, rootIndex());
    const std::optional<int> from = messages->takeChangedFrom(rowOption(), index);
    if (changed && !repaintWanted_) return;  // not on screen after all
    if (!changed && !from) return;           // neither the rendering nor its height changed
    if (changed && !from) {
      viewport()->update();  // the height changed with something other than the rendering
      return;
    }
    const int moved = bar->value() - offset;
    if (moved != 0) viewport()->scroll(0, -moved);
    const int y = std::max(0, top(r) - bar->value() + *from);
    if (y < viewport()->height()) {
      viewport()->update(QRect(0, y, viewport()->width(), viewport()->height() - y));
    }
    return;
  }
  if (!remeasure(rows)) {
    for (const int r : rows) viewport()->update(visualRect(model()->index(r, 0, rootIndex())));
  }
}

void MessageListView::rowsInserted(const QModelIndex& parent, int start, int end) {
  if (parent == rootIndex() && model() &&
      rowCount() + (end - start + 1) == model()->rowCount(rootIndex()) && start <= rowCount()) {
    const QStyleOptionViewItem option = rowOption();
    std::vector<int> added(end - start + 1);
    for (int r = start; r <= end; ++r) added[r - start] = measure(r, option);
    heights_.insert(heights_.begin() + start, added.begin(), added.end());
    QSet<int> moved;
    for (const int r : std::as_const(pending_))
      moved.insert(r >= start ? r + (end - start + 1) : r);
    pending_ = moved;
    rebuildTree();
    updateGeometries();
    viewport()->update();
  } else if (parent == rootIndex()) {
    scheduleDelayedItemsLayout();
  }
  QAbstractItemView::rowsInserted(parent, start, end);
  measureVisible();
}

void MessageListView::rowsAboutToBeRemoved(const QModelIndex& parent, int start, int end) {
  // Not QListView's: it lays out every row again. The heights go when the rows have gone.
  QAbstractItemView::rowsAboutToBeRemoved(parent, start, end);
}

void MessageListView::currentChanged(const QModelIndex& current, const QModelIndex& previous) {
  QAbstractItemView::currentChanged(current, previous);
#if QT_CONFIG(accessibility)
  if (QAccessible::isActive() && current.isValid() && hasFocus()) {
    QAccessibleEvent event(this, QAccessible::Focus);
    event.setChild(current.row());
    QAccessible::updateAccessibility(&event);
  }
#endif
}

void MessageListView::selectionChanged(const QItemSelection& selected,
                                       const QItemSelection& deselected) {
  QAbstractItemView::selectionChanged(selected, deselected);
}

QSize MessageListView::viewportSizeHint() const {
  return QAbstractItemView::viewportSizeHint();
}

void MessageListView::setModel(QAbstractItemModel* model) {
  if (this->model()) {
    disconnect(this->model(), &QAbstractItemModel::rowsRemoved, this,
               &MessageListView::onRowsRemoved);
  }
  QListView::setModel(model);  // QAbstractItemView's
  if (model) {
    connect(model, &QAbstractItemModel::rowsRemoved, this, &MessageListView::onRowsRemoved);
  }
}

void MessageListView::onRowsRemoved(const QModelIndex& parent, int start, int end) {
  if (parent != rootIndex() || !model()) return;
  const int count = end - start + 1;
  const int rows = model()->rowCount(rootIndex());
  if (rows == rowCount()) return;  // laid out since
  if (rowCount() - count != rows || end >= rowCount()) {
    scheduleDelayedItemsLayout();
    return;
  }
  heights_.erase(heights_.begin() + start, heights_.begin() + end + 1);
  QSet<int> kept;
  for (const int r : std::as_const(pending_)) {
    if (r < start) kept.insert(r);
    if (r > end) kept.insert(r - count);
  }
  pending_ = kept;
  rebuildTree();
  updateGeometries();
  measureVisible();
  viewport()->update();
}

// ---- geometry -------------------------------------------------------------------------------

QRect MessageListView::visualRect(const QModelIndex& index) const {
  ensureLaidOut();
  if (!index.isValid() || index.parent() != rootIndex() || index.row() >= rowCount()) return {};
  return QRect(0, top(index.row()) - verticalOffset(), viewport()->width(), heights_[index.row()]);
}

QModelIndex MessageListView::indexAt(const QPoint& point) const {
  ensureLaidOut();
  if (!model() || point.x() < 0 || point.x() >= viewport()->width()) return {};
  const int row = rowAtY(point.y() + verticalOffset());
  if (row < 0 || row >= rowCount()) return {};
  return model()->index(row, 0, rootIndex());
}

int MessageListView::verticalOffset() const {
  return verticalScrollBar()->value();
}

void MessageListView::scrollTo(const QModelIndex& index, ScrollHint hint) {
  ensureLaidOut();
  if (!index.isValid() || index.parent() != rootIndex() || index.row() >= rowCount()) return;
  const int y = top(index.row());
  const int h = heights_[index.row()];
  const int view = viewport()->height();
  const int offset = verticalOffset();
  int to = offset;
  switch (hint) {
    case PositionAtTop:
      to = y;
      break;
    case PositionAtBottom:
      to = y + h - view;
      break;
    case PositionAtCenter:
      to = y + h / 2 - view / 2;
      break;
    case EnsureVisible:
      if (y < offset || h > view) {
        to = y;
      } else if (y + h > offset + view) {
        to = y + h - view;
      }
      break;
  }
  verticalScrollBar()->setValue(to);
}

void MessageListView::updateGeometries() {
  QScrollBar* bar = verticalScrollBar();
  const int view = viewport()->height();
  bar->setSingleStep(std::max(1, 2 * fontMetrics().lineSpacing()));
  bar->setPageStep(std::max(1, view));
  bar->setRange(0, std::max(0, total_ - view));
  horizontalScrollBar()->setRange(0, 0);
  QAbstractItemView::updateGeometries();
}

void MessageListView::scrollContentsBy(int dx, int dy) {
  Q_UNUSED(dx);
  if (dy == 0) return;
  if (adjusting_) return;  // remeasure() repaints when something on screen moved
  if (measuring_) {
    viewport()->update();
    return;
  }
  // The rows coming into view are rendered and measured first: painted once, at their height.
  if (measureVisible()) {
    viewport()->update();
  } else {
    viewport()->scroll(0, dy);
  }
  schedulePrefetch();
}

void MessageListView::resizeEvent(QResizeEvent* event) {
  QAbstractItemView::resizeEvent(event);
  if (viewport()->width() != laidOutWidth_ && rowCount() > 0) {
    // Every row's height depends on the width.
    scheduleDelayedItemsLayout();
  } else {
    measureVisible();
  }
}

QModelIndex MessageListView::moveCursor(CursorAction action, Qt::KeyboardModifiers) {
  if (!model() || rowCount() == 0) return {};
  const QModelIndex current = currentIndex();
  int row = current.isValid() ? current.row() : rowAtY(verticalOffset());
  switch (action) {
    case MoveUp:
    case MovePrevious:
      --row;
      break;
    case MoveDown:
    case MoveNext:
      ++row;
      break;
    case MovePageUp:
      row = rowAtY(std::max(0, top(row) - viewport()->height()));
      break;
    case MovePageDown:
      row = rowAtY(top(row) + viewport()->height());
      break;
    case MoveHome:
      row = 0;
      break;
    case MoveEnd:
      row = rowCount() - 1;
      break;
    default:
      break;
  }
  row = std::clamp(row, 0, rowCount() - 1);
  return model()->index(row, 0, rootIndex());
}

void MessageListView::keyPressEvent(QKeyEvent* event) {
  // A message can be taller than the viewport: keys scroll by pixels, not by rows.
  QScrollBar* bar = verticalScrollBar();
  switch (event->key()) {
    case Qt::Key_Up:
      bar->triggerAction(QAbstractSlider::SliderSingleStepSub);
      break;
    case Qt::Key_Down:
      bar->triggerAction(QAbstractSlider::SliderSingleStepAdd);
      break;
    case Qt::Key_PageUp:
      bar->triggerAction(QAbstractSlider::SliderPageStepSub);
      break;
    case Qt::Key_PageDown:
      bar->triggerAction(QAbstractSlider::SliderPageStepAdd);
      break;
    case Qt::Key_Home:
      bar->triggerAction(QAbstractSlider::SliderToMinimum);
      break;
    case Qt::Key_End:
      bar->triggerAction(QAbstractSlider::SliderToMaximum);
      break;
    default:
      QAbstractItemView::keyPressEvent(event);
      return;
  }
  event->accept();
}

void MessageListView::setSelection(const QRect& rect, QItemSelectionModel::SelectionFlags command) {
  if (!selectionModel() || !model() || rowCount() == 0) return;
  const QRect r = rect.normalized();
  const int first = std::clamp(rowAtY(r.top() + verticalOffset()), 0, rowCount() - 1);
  const int last = std::clamp(rowAtY(r.bottom() + verticalOffset()), 0, rowCount() - 1);
  selectionModel()->select(
      QItemSelection(model()->index(first, 0, rootIndex()), model()->index(last, 0, rootIndex())),
      command);
}

QRegion MessageListView::visualRegionForSelection(const QItemSelection& selection) const {
  QRegion region;
  const QRect shown = viewport()->rect();
  for (const QItemSelectionRange& range : selection) {
    if (range.parent() != rootIndex()) continue;
    const QRect a = visualRect(model()->index(range.top(), 0, rootIndex()));
    const QRect b = visualRect(model()->index(range.bottom(), 0, rootIndex()));
    region += a.united(b) & shown;
  }
  return region;
}

// ---- painting -------------------------------------------------------------------------------

void MessageListView::paintEvent(QPaintEvent* event) {
  if (!model() || layoutPending()) return;  // the layout scheduled paints again
  QPainter painter(viewport());
  // The delegate draws a message's text only within it (a growing answer's newest lines).
  painter.setClipRect(event->rect());
  QStyleOptionViewItem option;
  initViewItemOption(&option);
  const QRect area = event->rect();
  const int offset = verticalOffset();
  const QModelIndex hover = indexAt(viewport()->mapFromGlobal(QCursor::pos()));
  for (int r = std::max(0, rowAtY(offset + area.top()));
       r < rowCount() && top(r) - offset <= area.bottom(); ++r) {
    const QModelIndex index = model()->index(r, 0, rootIndex());
    QStyleOptionViewItem o = option;
    o.rect = QRect(0, top(r) - offset, viewport()->width(), heights_[r]);
    o.index = index;
    if (selectionModel() && selectionModel()->isSelected(index)) o.state |= QStyle::State_Selected;
    if (index == hover && underMouse()) o.state |= QStyle::State_MouseOver;
    if (QAbstractItemDelegate* delegate = itemDelegateForIndex(index)) {
      delegate->paint(&painter, o, index);
    }
  }
}

}  // namespace tidelane::ui
// NOLINTEND(bugprone-parent-virtual-call)
