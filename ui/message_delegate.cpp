#include "ui/message_delegate.h"

#include <QAbstractItemView>
#include <QAbstractTextDocumentLayout>
#include <QDateTime>
#include <QFontDatabase>
#include <QMouseEvent>
#include <QPainter>
#include <QTextBlock>
#include <QTextCursor>
#include <QTextDocument>
#include <QTextDocumentFragment>
#include <QTextFrame>
#include <QTextTable>
#include <QThread>

#include "ui/conversation_model.h"

#ifdef Q_OS_LINUX
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace tidelane::ui {
namespace {

constexpr int kMargin = 8;
constexpr int kPadding = 10;
constexpr std::size_t kMaxCached = 4000;
constexpr std::size_t kMaxEstimated = 100000;

QFont smaller(QFont f) {
  f.setPointSizeF(f.pointSizeF() * 0.85);
  return f;
}

QFont bold(QFont f) {
  f.setBold(true);
  return f;
}

QTextCharFormat monoFormat(const QFont& body, const QColor& background) {
  QFont mono = QFontDatabase::systemFont(QFontDatabase::FixedFont);
  QTextCharFormat f;
  f.setFontFamilies(QStringList{mono.family(), QStringLiteral("monospace")});
  f.setFontFixedPitch(true);
  f.setFontStyleHint(QFont::Monospace);
  f.setFontPointSize(body.pointSizeF() > 0 ? body.pointSizeF() * 0.95 : 9);
  if (background.isValid()) f.setBackground(background);
  return f;
}

// The trace line as shown: with ▸ or ▾ when there is a timeline to open.
QString traceText(const QModelIndex& index) {
  QString trace = index.data(ConversationModel::TraceRole).toString();
  if (trace.isEmpty() || index.data(ConversationModel::TimelineRole).toStringList().isEmpty()) {
    return trace;
  }
  return (index.data(ConversationModel::ExpandedRole).toBool() ? QStringLiteral("▾ ")
                                                               : QStringLiteral("▸ ")) +
         trace;
}

ReceiptBadge receiptBadge(const QModelIndex& index) {
  return static_cast<ReceiptBadge>(index.data(ConversationModel::ReceiptBadgeRole).toInt());
}

// The badge's words; empty when the answer has no receipt (nothing is shown).
QString receiptBadgeText(const QModelIndex& index) {
  switch (receiptBadge(index)) {
    case ReceiptBadge::Verified:
      return MessageDelegate::tr("✓ verified");
    case ReceiptBadge::Invalid:
      return MessageDelegate::tr("✗ receipt invalid");
    case ReceiptBadge::None:
      break;
  }
  return {};
}

}  // namespace

MessageDelegate::MessageDelegate(QObject* parent) : QStyledItemDelegate(parent) {
  pool_.setMaxThreadCount(1);
  refresh_.setSingleShot(true);
  refresh_.setInterval(kRerenderMs);
  connect(&refresh_, &QTimer::timeout, this, [this] {
    const auto stale = std::exchange(stale_, {});
    for (const auto& i : stale) {
      if (i.isValid()) emit sizeHintChanged(i);
    }
  });
}

MessageDelegate::~MessageDelegate() {
  // A finished answer still being rendered: its result is posted to this object, which Qt drops
  // with it once the worker is done.
  pool_.clear();
  pool_.waitForDone();
}

std::unique_ptr<QTextDocument> MessageDelegate::renderMarkdown(const QString& markdown,
                                                               const QFont& font,
                                                               const QPalette& palette) {
  auto doc = std::make_unique<QTextDocument>();
  doc->setDefaultFont(font);
  doc->setDocumentMargin(0);
  doc->setMarkdown(markdown, QTextDocument::MarkdownDialectGitHub);
  style(doc.get(), doc->begin(), font, palette);
  return doc;
}

void MessageDelegate::style(QTextDocument* doc, const QTextBlock& from, const QFont& font,
                            const QPalette& palette) {
  const QColor base = palette.color(QPalette::Base);
  const QColor tint = base.lightness() > 128 ? base.darker(108) : base.lighter(140);
  QTextCursor cursor(doc);
  for (QTextBlock block = from; block.isValid(); block = block.next()) {
    const QTextBlockFormat bf = block.blockFormat();
    if (bf.hasProperty(QTextFormat::BlockCodeFence) ||
        bf.hasProperty(QTextFormat::BlockCodeLanguage)) {
      // A code block: monospace on a tinted band.
      QTextBlockFormat tinted = bf;
      tinted.setBackground(tint);
      tinted.setNonBreakableLines(true);
      cursor.setPosition(block.position());
      cursor.setBlockFormat(tinted);
      cursor.setPosition(block.position() + block.length() - 1, QTextCursor::KeepAnchor);
      cursor.mergeCharFormat(monoFormat(font, {}));
      cursor.setBlockCharFormat(monoFormat(font, {}));
      continue;
    }
    // Inline `code`: the importer marks it fixed-pitch.
    for (auto it = block.begin(); !it.atEnd(); ++it) {
      const QTextFragment fragment = it.fragment();
      if (!fragment.isValid() || !fragment.charFormat().fontFixedPitch()) continue;
      cursor.setPosition(fragment.position());
      cursor.setPosition(fragment.position() + fragment.length(), QTextCursor::KeepAnchor);
      cursor.mergeCharFormat(monoFormat(font, tint));
    }
  }
  // Only the tables from `from` on: setting a table's format lays it out again, and a growing
  // answer is styled from its new blocks on every kRerenderMs.
  const int fromPosition = from.isValid() ? from.position() : 0;
  for (QTextFrame* frame : doc->rootFrame()->childFrames()) {
    if (frame->lastPosition() < fromPosition) continue;
    if (auto* table = qobject_cast<QTextTable*>(frame)) {
      QTextTableFormat tf = table->format();
      tf.setBorder(1);
      tf.setBorderStyle(QTextFrameFormat::BorderStyle_Solid);
      tf.setBorderBrush(palette.color(QPalette::Mid));
      tf.setBorderCollapse(true);
      tf.setCellPadding(4);
      tf.setCellSpacing(0);
      table->setFormat(tf);
    }
  }
}

int MessageDelegate::stableEnd(const QString& markdown, int from) {
  // Blank lines outside fenced code end Markdown blocks: what comes before the last of them
  // parses the same whatever follows (lists and tables end there too).
  int end = from;
  bool fenced = false;
  int line = from;
  while (line < markdown.size()) {
    int next = static_cast<int>(markdown.indexOf(QLatin1Char('\n'), line));
    if (next < 0) break;  // the last line is still being written
    const QStringView text = QStringView(markdown).mid(line, next - line);
    if (text.trimmed().startsWith(QLatin1String("```"))) fenced = !fenced;
    if (!fenced && text.trimmed().isEmpty()) end = next + 1;
    line = next + 1;
  }
  return end;
}

int MessageDelegate::renderGrowing(Entry& e, const QString& markdown, const QFont& font,
                                   const QPalette& palette) const {
  if (!e.doc || e.stableDocEnd < 0 || !markdown.startsWith(e.stableText)) {
    e.doc = std::make_unique<QTextDocument>();
    // Edited every kRerenderMs while the answer grows: no undo history (each edit was recorded,
    // and the record grew with the answer).
    e.doc->setUndoRedoEnabled(false);
    e.doc->setDefaultFont(font);
    e.doc->setDocumentMargin(0);
    e.stableText.clear();
    e.stableDocEnd = 0;
  }
  // Drop the unfinished tail rendered last time; what came before it stays as it was (and stays
  // laid out: the document lays out only the blocks that change).
  QTextCursor cursor(e.doc.get());
  // One edit: the document's layout runs once, at the end, rather than once per change below
  // (each pass went over every block of the answer, ~4 ms in all once it was 10,000 characters
  // long, and left the answer up to ~100 px taller than a full layout of the same document).
  cursor.beginEditBlock();
  // The blocks before the one this position is in are neither edited nor restyled below.
  const int changedFrom = e.stableDocEnd;
  cursor.setPosition(e.stableDocEnd);
  cursor.movePosition(QTextCursor::End, QTextCursor::KeepAnchor);
  cursor.removeSelectedText();
  const int firstBlock = cursor.block().blockNumber();
  const int stable = stableEnd(markdown, static_cast<int>(e.stableText.size()));
  // Inserted into the empty block at the end, a fragment's first block would take that block's
  // plain format: its own (margins, code fence, heading) is put back, unless it is a list item,
  // whose list lives in the fragment's document.
  const auto insert = [&cursor, &e](const QString& part) {
    QTextDocument parsed;
    parsed.setMarkdown(part, QTextDocument::MarkdownDialectGitHub);
    // Nothing to show yet (e.g. only the opening ``` of a code block): no empty line either.
    if (parsed.isEmpty()) return;
    // Into a new block after what is there (as a whole rendering leaves the empty block after a
    // table empty).
    if (cursor.position() > 0) cursor.insertBlock(QTextBlockFormat(), QTextCharFormat());
    const QTextBlock first = parsed.begin();
    const int at = cursor.position();
    cursor.insertFragment(QTextDocumentFragment(&parsed));
    if (!first.textList()) {
      QTextCursor fix(e.doc.get());
      fix.setPosition(at);
      fix.setBlockFormat(first.blockFormat());
    }
  };
  if (stable > e.stableText.size()) {
    insert(markdown.mid(e.stableText.size(), stable - e.stableText.size()));
    e.stableText = markdown.left(stable);
    cursor.movePosition(QTextCursor::End);
    e.stableDocEnd = cursor.position();
  }
  insert(markdown.mid(stable));
  style(e.doc.get(), e.doc->findBlockByNumber(firstBlock), font, palette);
  cursor.endEditBlock();
  return changedFrom;
}

int MessageDelegate::contentWidth(const QStyleOptionViewItem& option) const {
  int full = option.rect.width();
  if (const auto* view = qobject_cast<const QAbstractItemView*>(option.widget)) {
    full = view->viewport()->width();
  }
  return std::max(120, full - 2 * kMargin - 2 * kPadding);
}

MessageDelegate::Entry* MessageDelegate::entry(const QStyleOptionViewItem& option,
                                               const QModelIndex& index, bool render,
                                               bool painting) const {
  const quint64 key = index.data(ConversationModel::KeyRole).toULongLong();
  // Looked up before reading the row: sizeHint asks this for every row of a long chat.
  auto it = cache_.find(key);
  if (it == cache_.end() && !render) return nullptr;
  const QString text = index.data(ConversationModel::TextRole).toString();
  const int state =
      static_cast<int>(index.data(ConversationModel::StateRole).value<ConversationModel::State>());
  if (it == cache_.end()) {
    if (cache_.size() > kMaxCached) cache_.clear();
    it = cache_.emplace(key, Entry{}).first;
  }
  Entry& e = it->second;
  const qint64 now = QDateTime::currentMSecsSinceEpoch();
  const bool changed = !e.doc || e.text != text || e.state != state;
  const bool streaming = state == static_cast<int>(ConversationModel::State::Streaming);
  if (changed && e.doc && streaming && painting) {
    // A growing answer is rendered anew when the list measures it (sizeHint), every
    // kRerenderMs while it grows, and whole once it ends: rendered here, it would come out
    // taller than its row and make the list measure it once more, at every paint. Paint shows
    // the last rendering.
  } else if (changed && e.doc && streaming && now - e.renderedAt < kRerenderMs) {
    // Too soon to parse the growing answer again: show the last rendering and come back.
    stale_.append(QPersistentModelIndex(index));
    if (!refresh_.isActive()) refresh_.start(kRerenderMs);
  } else if (changed && e.doc && e.stableDocEnd >= 0 && !streaming) {
    // A growing answer has ended: rendered whole (as a stored answer) on the worker thread; the
    // last growing rendering is shown until it comes (finishRender).
    if (e.pendingState != state || e.pendingText != text) {
      renderInBackground(e, key, index, text, state, option);
    }
  } else if (changed) {
    const bool user = index.data(ConversationModel::RoleRole).toString() == QLatin1String("user");
    const QString shown = text.isEmpty() ? QStringLiteral("…") : text;
    if (user) {
      e.doc = std::make_unique<QTextDocument>();
      e.doc->setDefaultFont(option.font);
      e.doc->setDocumentMargin(0);
      e.doc->setPlainText(shown);
      e.changedFrom = 0;
    } else if (streaming && !text.isEmpty()) {
      // Parsing the whole answer again every kRerenderMs cost 20-30 ms once it was ~10,000
      // characters long: only the part after its last finished block is parsed again. The
      // finished answer is rendered whole (below), exactly as a stored one.
      const int from = renderGrowing(e, text, option.font, option.palette);
      e.changedFrom = e.changedFrom < 0 ? from : std::min(e.changedFrom, from);
    } else {
      e.doc = renderMarkdown(shown, option.font, option.palette);
      e.stableDocEnd = -1;
      e.changedFrom = 0;
    }
    e.text = text;
    e.state = state;
    e.renderedAt = now;
    ++renders_;
  }
  const int width = contentWidth(option);
  if (!qFuzzyCompare(e.doc->textWidth(), static_cast<qreal>(width))) {
    e.doc->setTextWidth(width);
    e.changedFrom = 0;
  }
  return &e;
}

void MessageDelegate::renderInBackground(Entry& e, quint64 key, const QModelIndex& index,
                                         const QString& text, int state,
                                         const QStyleOptionViewItem& option) const {
  e.pendingText = text;
  e.pendingState = state;
  e.pendingIndex = QPersistentModelIndex(index);
  // Copies made here (implicitly shared, atomically counted): nothing the worker reads is
  // touched by the GUI thread while it runs, and the document it builds is its own.
  const QString shown = text.isEmpty() ? QStringLiteral("…") : text;
  const QFont font = option.font;
  const QPalette palette = option.palette;
  const int width = contentWidth(option);
  QThread* gui = thread();
  auto* self = const_cast<MessageDelegate*>(this);
  pool_.start([self, gui, key, text, shown, state, font, palette, width] {
#ifdef Q_OS_LINUX
    // Below the GUI thread's priority (nice +10, this thread only): where both want the same
    // core, the GUI thread goes first, and this still runs (QThread::IdlePriority would be
    // SCHED_IDLE, which a busy machine can starve).
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
#endif
    auto doc = renderMarkdown(shown, font, palette);
    doc->setTextWidth(width);
    doc->size();  // laid out here, not in the GUI thread's next sizeHint or paint
    doc->moveToThread(gui);
    // Owned by the queued call: freed with it if the delegate is gone before it runs.
    auto result = std::make_shared<std::unique_ptr<QTextDocument>>(std::move(doc));
    QMetaObject::invokeMethod(
        self,
        [self, key, text, state, result] {
          self->finishRender(key, text, state, std::move(*result));
        },
        Qt::QueuedConnection);
  });
}

void MessageDelegate::finishRender(quint64 key, const QString& text, int state,
                                   std::unique_ptr<QTextDocument> doc) const {
  const auto it = cache_.find(key);
  if (it == cache_.end()) return;  // the cache was emptied meanwhile: rendered when painted
  Entry& e = it->second;
  // Superseded (the row changed again while this was built): a later one is on its way.
  if (e.pendingState != state || e.pendingText != text) return;
  e.doc = std::move(doc);
  e.text = text;
  e.state = state;
  e.renderedAt = QDateTime::currentMSecsSinceEpoch();
  e.stableText.clear();
  e.stableDocEnd = -1;
  e.changedFrom = 0;
  e.pendingText.clear();
  e.pendingState = -1;
  ++renders_;
  ++backgroundRenders_;
  // The view measures the row again and repaints it (its height may change: a growing
  // rendering can differ by empty lines next to tables and lists).
  const QPersistentModelIndex index = std::exchange(e.pendingIndex, {});
  if (index.isValid()) emit const_cast<MessageDelegate*>(this)->sizeHintChanged(index);
}

bool MessageDelegate::isRenderPending(const QModelIndex& index) const {
  const auto it = cache_.find(index.data(ConversationModel::KeyRole).toULongLong());
  return it != cache_.end() && it->second.pendingState >= 0;
}

std::optional<int> MessageDelegate::takeChangedFrom(const QStyleOptionViewItem& option,
                                                    const QModelIndex& index) const {
  const auto it = cache_.find(index.data(ConversationModel::KeyRole).toULongLong());
  if (it == cache_.end() || !it->second.doc) return 0;
  Entry& e = it->second;
  const int from = std::exchange(e.changedFrom, -1);
  if (from < 0) return std::nullopt;
  if (from == 0) return 0;
  // The block `from` is in, or the table (frame) around it, laid out where it was before: only
  // the blocks from it on were edited.
  QAbstractTextDocumentLayout* docLayout = e.doc->documentLayout();
  const QTextBlock block = e.doc->findBlock(from);
  if (!block.isValid()) return 0;
  qreal y = docLayout->blockBoundingRect(block).top();
  for (QTextFrame* f = QTextCursor(block).currentFrame(); f && f != e.doc->rootFrame();
       f = f->parentFrame()) {
    y = std::min(y, docLayout->frameBoundingRect(f).top());
  }
  const Layout l = layout(option, index, e.doc.get());
  // Two pixels of slack for antialiased edges that reach above the block.
  return std::max(0, l.text.top() - option.rect.top() + qFloor(y) - 2);
}

bool MessageDelegate::isRendered(const QModelIndex& index) const {
  return cache_.count(index.data(ConversationModel::KeyRole).toULongLong()) > 0;
}

const QTextDocument* MessageDelegate::document(const QStyleOptionViewItem& option,
                                               const QModelIndex& index) const {
  return entry(option, index, true)->doc.get();
}

MessageDelegate::Layout MessageDelegate::layout(const QStyleOptionViewItem& option,
                                                const QModelIndex& index,
                                                const QTextDocument* doc) const {
  const int width = contentWidth(option);
  const QString trace = traceText(index);
  const QFontMetrics whoFm(bold(option.font));
  const QFontMetrics traceFm(smaller(option.font));

  int textHeight = 0;
  if (doc) {
    textHeight = qCeil(doc->size().height());
  } else {
    // Not rendered yet: an estimate from the length and line breaks, fixed on first paint.
    const QString text = index.data(ConversationModel::TextRole).toString();
    const QFontMetrics fm(option.font);
    const int perLine = std::max(1, width / std::max(1, fm.averageCharWidth()));
    const int lines = static_cast<int>(text.count(QLatin1Char('\n'))) + 1 +
                      static_cast<int>(text.size()) / perLine;
    textHeight = lines * fm.lineSpacing();
  }

  Layout l;
  int y = option.rect.top() + kMargin + kPadding;
  const int x = option.rect.left() + kMargin + kPadding;
  l.who = QRect(x, y, width, whoFm.height());
  y += l.who.height() + 2;
  l.text = QRect(x, y, width, textHeight);
  y += l.text.height();
  if (!trace.isEmpty()) {
    const QRect traceBox =
        traceFm.boundingRect(QRect(0, 0, width, 1 << 20), Qt::TextWordWrap, trace);
    l.trace = QRect(x, y + 4, width, traceBox.height());
    y = l.trace.bottom() + 1;
    const QStringList timeline = index.data(ConversationModel::TimelineRole).toStringList();
    if (index.data(ConversationModel::ExpandedRole).toBool() && !timeline.isEmpty()) {
      const QRect box = traceFm.boundingRect(QRect(0, 0, width - kPadding, 1 << 20),
                                             Qt::TextWordWrap, timeline.join(QLatin1Char('\n')));
      l.timeline = QRect(x + kPadding, y + 2, width - kPadding, box.height());
      y = l.timeline.bottom() + 1;
    }
  }

  // The actions row: ‹ 1/2 ›  Copy  Edit | Regenerate
  const auto state = index.data(ConversationModel::StateRole).value<ConversationModel::State>();
  const bool user = index.data(ConversationModel::RoleRole).toString() == QLatin1String("user");
  const bool growing =
      state == ConversationModel::State::Waiting || state == ConversationModel::State::Streaming;
  l.actions = QRect(x, y + 4, width, traceFm.height());
  int ax = x;
  const auto link = [&](Action a, const QString& word) {
    const int w = traceFm.horizontalAdvance(word);
    l.links.append({a, QRect(ax, l.actions.top(), w, l.actions.height())});
    ax += w + traceFm.horizontalAdvance(QStringLiteral("   "));
  };
  const int count = index.data(ConversationModel::BranchCountRole).toInt();
  if (count > 1) {
    l.branchLabel =
        QStringLiteral("%1/%2").arg(index.data(ConversationModel::BranchRole).toInt()).arg(count);
    link(Action::PreviousBranch, QStringLiteral("‹"));
    ax -= traceFm.horizontalAdvance(QStringLiteral("  "));
    const int w = traceFm.horizontalAdvance(l.branchLabel);
    l.links.append({Action::None, QRect(ax, l.actions.top(), w, l.actions.height())});
    ax += w + traceFm.horizontalAdvance(QStringLiteral(" "));
    link(Action::NextBranch, QStringLiteral("›"));
  }
  if (const QString badge = receiptBadgeText(index); !badge.isEmpty()) {
    link(Action::ShowReceipt, badge);
  }
  link(Action::Copy, tr("Copy"));
  if (user) {
    link(Action::Edit, tr("Edit"));
  } else if (!growing) {
    link(Action::Regenerate, tr("Regenerate"));
  }
  y = l.actions.bottom() + 1;

  l.bubble = QRect(option.rect.left() + kMargin, option.rect.top() + kMargin, width + 2 * kPadding,
                   y + kPadding - option.rect.top() - kMargin);
  return l;
}

QList<MessageDelegate::CodeBlock> MessageDelegate::codeBlocks(const Layout& l,
                                                              const QTextDocument* doc,
                                                              const QFont& font) const {
  QList<CodeBlock> out;
  if (!doc) return out;
  const QFontMetrics fm(smaller(font));
  const int w = fm.horizontalAdvance(tr("Copy code"));
  auto* docLayout = doc->documentLayout();
  QRectF area;
  QStringList lines;
  const auto close = [&] {
    if (lines.isEmpty()) return;
    const QPoint topRight = l.text.topLeft() + area.topRight().toPoint();
    out.append(
        {QRect(std::min(topRight.x(), l.text.right()) - w - 4, topRight.y() + 2, w, fm.height()),
         lines.join(QLatin1Char('\n'))});
    lines.clear();
    area = {};
  };
  for (QTextBlock block = doc->begin(); block.isValid(); block = block.next()) {
    const QTextBlockFormat bf = block.blockFormat();
    if (bf.hasProperty(QTextFormat::BlockCodeFence) ||
        bf.hasProperty(QTextFormat::BlockCodeLanguage)) {
      const QRectF r = docLayout->blockBoundingRect(block);
      area = area.isNull() ? QRectF(0, r.top(), l.text.width(), r.height()) : area.united(r);
      lines.append(block.text());
    } else {
      close();
    }
  }
  close();
  return out;
}

MessageDelegate::Action MessageDelegate::actionAt(const QStyleOptionViewItem& option,
                                                  const QModelIndex& index, QPoint pos,
                                                  QString* code) const {
  Entry* e = entry(option, index, true);
  const Layout l = layout(option, index, e->doc.get());
  for (const auto& [action, rect] : l.links) {
    if (action != Action::None && rect.adjusted(-3, -3, 3, 3).contains(pos)) return action;
  }
  if (!l.trace.isNull() && l.trace.contains(pos) &&
      !index.data(ConversationModel::TimelineRole).toStringList().isEmpty()) {
    return Action::ToggleTrace;
  }
  if (index.data(ConversationModel::RoleRole).toString() != QLatin1String("user")) {
    for (const auto& block : codeBlocks(l, e->doc.get(), option.font)) {
      if (block.copy.adjusted(-3, -3, 3, 3).contains(pos)) {
        if (code) *code = block.text;
        return Action::CopyCode;
      }
    }
  }
  return Action::None;
}

bool MessageDelegate::editorEvent(QEvent* event, QAbstractItemModel* model,
                                  const QStyleOptionViewItem& option, const QModelIndex& index) {
  if (event->type() == QEvent::MouseButtonRelease) {
    const auto* mouse = static_cast<QMouseEvent*>(event);
    if (mouse->button() == Qt::LeftButton) {
      QString code;
      const Action a = actionAt(option, index, mouse->position().toPoint(), &code);
      if (a != Action::None) {
        emit actionTriggered(index, a, code);
        return true;
      }
    }
  }
  return QStyledItemDelegate::editorEvent(event, model, option, index);
}

int MessageDelegate::estimatedHeight(const QStyleOptionViewItem& option,
                                     const QModelIndex& index) const {
  const int width = contentWidth(option);
  if (metrics_.line == 0 || metrics_.font != option.font || metrics_.width != width) {
    const QFontMetrics body(option.font);
    const QFontMetrics trace(smaller(option.font));
    metrics_ = {option.font,
                width,
                QFontMetrics(bold(option.font)).height(),
                body.lineSpacing(),
                std::max(1, body.averageCharWidth()),
                trace.height(),
                trace.lineSpacing()};
    estimates_.clear();
  }
  // The list lays out every row again whenever one painted row turns out taller or shorter
  // than estimated (each scroll step): counting the lines of 10,000 messages each time added
  // ~13 ms to a step, so an estimate is kept until the text's length changes.
  const quint64 key = index.data(ConversationModel::KeyRole).toULongLong();
  const QString text = index.data(ConversationModel::TextRole).toString();
  if (auto it = estimates_.find(key); it != estimates_.end() && it->second.first == text.size()) {
    return it->second.second;
  }
  const int perLine = std::max(1, width / metrics_.averageChar);
  const int lines =
      static_cast<int>(text.count(QLatin1Char('\n'))) + 1 + static_cast<int>(text.size()) / perLine;
  // As layout() stacks them: who, text, the trace line (one line, as most are) and the
  // actions row, inside the bubble's padding and the row's margins.
  int height =
      2 * kMargin + 2 * kPadding + metrics_.who + 2 + lines * metrics_.line + 4 + metrics_.trace;
  if (!index.data(ConversationModel::TraceRole).toString().isEmpty()) {
    height += 4 + metrics_.traceLine;
  }
  if (estimates_.size() > kMaxEstimated) estimates_.clear();
  estimates_[key] = {text.size(), height};
  return height;
}

QSize MessageDelegate::sizeHint(const QStyleOptionViewItem& option,
                                const QModelIndex& index) const {
  Entry* e = entry(option, index, false);
  // Rows never painted (nearly all of a long chat): an estimate, fixed on first paint.
  if (!e) return {option.rect.width(), estimatedHeight(option, index)};
  // Painted rows: the list asks again at every layout (each scroll step of a long chat), and
  // layout() shapes the trace and the links, so the height is kept while nothing it depends
  // on changed.
  Entry::Size now{e->doc->size().height(), contentWidth(option), traceText(index),
                  index.data(ConversationModel::ExpandedRole).toBool(), -1};
  if (e->size.height >= 0 && e->size.docHeight == now.docHeight && e->size.width == now.width &&
      e->size.expanded == now.expanded && e->size.trace == now.trace) {
    e->reportedHeight = e->size.height;
    return {option.rect.width(), e->size.height};
  }
  const Layout l = layout(option, index, e->doc.get());
  const int height = l.bubble.height() + 2 * kMargin;
  e->reportedHeight = height;
  now.height = height;
  e->size = std::move(now);
  return {option.rect.width(), height};
}

void MessageDelegate::paint(QPainter* painter, const QStyleOptionViewItem& option,
                            const QModelIndex& index) const {
  Entry* e = entry(option, index, true, true);
  const Layout l = layout(option, index, e->doc.get());
  const int height = l.bubble.height() + 2 * kMargin;
  if (e->reportedHeight != height) {
    // The estimate (or an earlier rendering) was off: ask the view to lay the row out again.
    e->reportedHeight = height;
    stale_.append(QPersistentModelIndex(index));
    if (!refresh_.isActive()) refresh_.start(0);
  }
  const bool user = index.data(ConversationModel::RoleRole).toString() == QLatin1String("user");
  const auto state = index.data(ConversationModel::StateRole).value<ConversationModel::State>();
  const QPalette& pal = option.palette;

  painter->save();
  painter->setRenderHint(QPainter::Antialiasing);
  QColor fill = user ? pal.color(QPalette::AlternateBase) : pal.color(QPalette::Base);
  if (state == ConversationModel::State::Failed) fill = QColor(0xf8, 0xd7, 0xda);
  painter->setPen(pal.color(QPalette::Mid));
  painter->setBrush(fill);
  painter->drawRoundedRect(l.bubble, 8, 8);

  painter->setPen(pal.color(QPalette::Text));
  painter->setFont(bold(option.font));
  painter->drawText(l.who, Qt::AlignLeft, user ? tr("You") : tr("Tidelane"));

  painter->save();
  // Only the part of the text that is on screen: a long answer is taller than the viewport,
  // and drawing all of it at every token of a streaming answer took most of a frame.
  QRect shown = l.text;
  if (const auto* view = qobject_cast<const QAbstractItemView*>(option.widget)) {
    shown &= view->viewport()->rect();
  }
  // And only what is being repainted (MessageListView clips to the paint event's rectangle: a
  // growing answer's newest lines).
  if (painter->hasClipping()) shown &= painter->clipBoundingRect().toAlignedRect();
  painter->translate(l.text.topLeft());
  QAbstractTextDocumentLayout::PaintContext ctx;
  ctx.palette = pal;
  ctx.palette.setColor(QPalette::Text, pal.color(QPalette::Text));
  ctx.clip = QRectF(shown.translated(-l.text.topLeft()));
  painter->setClipRect(ctx.clip);
  e->doc->documentLayout()->draw(painter, ctx);
  painter->restore();

  painter->setFont(smaller(option.font));
  const QString trace = traceText(index);
  if (!trace.isEmpty()) {
    painter->setPen(pal.color(QPalette::PlaceholderText));
    painter->drawText(l.trace, Qt::TextWordWrap, trace);
  }
  if (!l.timeline.isNull()) {
    painter->setPen(pal.color(QPalette::Text));
    painter->drawText(
        l.timeline, Qt::TextWordWrap,
        index.data(ConversationModel::TimelineRole).toStringList().join(QLatin1Char('\n')));
  }
  const QColor linkColor = pal.color(QPalette::Link);
  for (const auto& [action, rect] : l.links) {
    QString word;
    switch (action) {
      case Action::None:
        word = l.branchLabel;
        break;
      case Action::PreviousBranch:
        word = QStringLiteral("‹");
        break;
      case Action::NextBranch:
        word = QStringLiteral("›");
        break;
      case Action::Copy:
        word = tr("Copy");
        break;
      case Action::Edit:
        word = tr("Edit");
        break;
      case Action::Regenerate:
        word = tr("Regenerate");
        break;
      case Action::ShowReceipt:
        word = receiptBadgeText(index);
        break;
      default:
        break;
    }
    QColor color = action == Action::None ? pal.color(QPalette::PlaceholderText) : linkColor;
    if (action == Action::ShowReceipt) {
      color = receiptBadge(index) == ReceiptBadge::Verified ? QColor(0x1a, 0x7f, 0x37)
                                                            : QColor(0xc6, 0x28, 0x28);
    }
    painter->setPen(color);
    painter->drawText(rect, Qt::AlignLeft | Qt::AlignVCenter, word);
  }
  if (!user) {
    for (const auto& block : codeBlocks(l, e->doc.get(), option.font)) {
      painter->setPen(linkColor);
      painter->drawText(block.copy, Qt::AlignRight | Qt::AlignVCenter, tr("Copy code"));
    }
  }
  painter->restore();
}

}  // namespace tidelane::ui
