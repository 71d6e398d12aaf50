// The chat's message list (ui/message_list_view.h) over a long conversation: an answer streaming
// into it measures only its own row (and the few on screen), never every row as QListView did;
// scrolling measures only the rows that come into view; rows stay stacked without gaps or
// overlaps, clicks find the row under them, the list follows the newest text, and it is
// accessible as a list. Observable behaviour (which rows the delegate is asked to size), not
// timing: docs/benchmarks/app.md has the timings.
#include <QAccessible>
#include <QPaintEvent>
#include <QScreen>
#include <QScrollBar>
#include <QSet>
#include <QTest>
#include <QTextDocument>

#include "ui/conversation_model.h"
#include "ui/message_delegate.h"
#include "ui/message_list_view.h"

using tidelane::ui::AnswerSummary;
using tidelane::ui::ConversationModel;
using tidelane::ui::MessageDelegate;
using tidelane::ui::MessageListView;

namespace {

// Records every row the view asks the size of.
class CountingDelegate : public MessageDelegate {
 public:
  using MessageDelegate::MessageDelegate;
  QSize sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const override {
    asked.insert(index.row());
    ++calls;
    return MessageDelegate::sizeHint(option, index);
  }
  void clear() {
    asked.clear();
    calls = 0;
  }
  mutable QSet<int> asked;
  mutable int calls = 0;
};

constexpr int kPairs = 1500;  // 3,000 rows

void fill(ConversationModel& model) {
  AnswerSummary done;
  done.finishReason = QStringLiteral("stop");
  for (int i = 0; i < kPairs; ++i) {
    model.appendUser(QStringLiteral("Question %1: how does the router spread a surge?").arg(i));
    const QString id = QStringLiteral("a%1").arg(i);
    model.beginAnswer(id);
    QString text = QStringLiteral("Answer %1. ").arg(i);
    for (int p = 0; p < 1 + i % 4; ++p) {
      text += QStringLiteral("It samples nodes softly by their saturation vector, ") +
              QStringLiteral("so that no node takes the whole peak.\n\n");
    }
    if (i % 5 == 0) text += QStringLiteral("```cpp\nint main() { return 0; }\n```\n");
    model.onToken(id, 0, text);
    model.onFinished(id, done);
  }
}

// The rows on screen are stacked edge to edge, each as tall as the delegate says now.
void checkStacked(MessageListView& view, CountingDelegate& delegate, ConversationModel& model) {
  QStyleOptionViewItem option;
  option.initFrom(&view);
  option.widget = &view;
  option.rect = QRect(0, 0, view.viewport()->width(), 0);
  const QModelIndex first = view.indexAt(QPoint(10, 0));
  QVERIFY(first.isValid());
  for (int r = first.row(); r < model.rowCount(); ++r) {
    const QRect rect = view.visualRect(model.index(r));
    if (rect.top() >= view.viewport()->height()) break;
    QCOMPARE(rect.height(), delegate.sizeHint(option, model.index(r)).height());
    QCOMPARE(view.indexAt(QPoint(10, rect.top())).row(), r);
    QCOMPARE(view.indexAt(QPoint(10, rect.bottom())).row(), r);
    if (r + 1 < model.rowCount())
      QCOMPARE(view.visualRect(model.index(r + 1)).top(), rect.bottom() + 1);
  }
}

// Whether two grabs of the screen show the same: each channel of each pixel within 8 of 255
// (the antialiased edge of a row's bubble can come out one level apart in two paints of the same
// row); text missing, shifted or left over differs by far more.
bool samePixels(const QImage& a, const QImage& b) {
  if (a.size() != b.size()) return false;
  for (int y = 0; y < a.height(); ++y) {
    for (int x = 0; x < a.width(); ++x) {
      const QRgb p = a.pixel(x, y), q = b.pixel(x, y);
      if (std::abs(qRed(p) - qRed(q)) > 8 || std::abs(qGreen(p) - qGreen(q)) > 8 ||
          std::abs(qBlue(p) - qBlue(q)) > 8) {
        qWarning() << "first difference at" << x << y << Qt::hex << p << q;
        return false;
      }
    }
  }
  return true;
}

// Shows `model` in `view` through `delegate` (which the view then owns) at `size`; true once
// the window is exposed, so what the tests measure next is real painting.
bool showList(MessageListView& view, ConversationModel& model, QAbstractItemDelegate* delegate,
              QSize size = {700, 500}) {
  view.setMessageDelegate(delegate);
  view.setModel(&model);
  view.resize(size);
  view.show();
  return QTest::qWaitForWindowExposed(&view);
}

}  // namespace

class TestMessageList : public QObject {
  Q_OBJECT

 private slots:
  void streamingIntoALongConversationMeasuresOnlyTheGrowingRow() {
    ConversationModel model;
    fill(model);
    MessageListView view;
    auto* delegate = new CountingDelegate(&view);
    QVERIFY(showList(view, model, delegate));
    // Following the newest text, as ChatView has it: the list stays at its end while it grows.
    QScrollBar* bar = view.verticalScrollBar();
    view.setFollowsEnd(true);
    view.scrollToBottom();
    QTest::qWait(200);
    const int layouts = view.fullLayouts();
    QVERIFY(layouts >= 1);

    model.appendUser(QStringLiteral("Explain the router, with code."));
    view.scrollToBottom();
    model.beginAnswer(QStringLiteral("r"));
    const int answerRow = model.rowCount() - 1;
    QTest::qWait(100);
    delegate->clear();
    const QString words[] = {QStringLiteral("The "), QStringLiteral("router "),
                             QStringLiteral("samples "), QStringLiteral("nodes.\n\n")};
    for (int i = 0; i < 120; ++i) {
      model.onToken(QStringLiteral("r"), i, words[i % 4]);
      QTest::qWait(5);  // 200 tok/s
    }
    QTest::qWait(MessageDelegate::kRerenderMs * 3);

    // No row but the growing answer and the few on screen was measured, and never all of them.
    QCOMPARE(view.fullLayouts(), layouts);
    QVERIFY2(delegate->asked.contains(answerRow), "the growing answer was never measured");
    for (const int r : std::as_const(delegate->asked)) {
      QVERIFY2(r >= answerRow - 10, qPrintable(QStringLiteral("row %1 was measured").arg(r)));
    }
    // A few rows per kRerenderMs (the tokens are coalesced); one relayout of the list would have
    // asked all 3,000 rows.
    QVERIFY2(delegate->calls < 500, qPrintable(QString::number(delegate->calls)));

    // The list followed the answer: its end is on screen, and the row is as tall as its text.
    QCOMPARE(bar->value(), bar->maximum());
    const QRect answer = view.visualRect(model.index(answerRow));
    QCOMPARE(answer.bottom(), view.viewport()->height() - 1);
    QCOMPARE(view.contentHeight(), bar->maximum() + view.viewport()->height());
    checkStacked(view, *delegate, model);

    // Finished: rendered whole once more (on the worker thread), measured again, still only
    // that row.
    delegate->clear();
    AnswerSummary done;
    done.finishReason = QStringLiteral("stop");
    model.onFinished(QStringLiteral("r"), done);
    QTRY_VERIFY(!delegate->isRenderPending(model.index(answerRow)));
    QTest::qWait(MessageDelegate::kRerenderMs * 2);
    QVERIFY(delegate->asked.contains(answerRow));
    QVERIFY(delegate->asked.size() < 10);
    QCOMPARE(bar->value(), bar->maximum());
    checkStacked(view, *delegate, model);
  }

  // When a streamed answer ends, its whole rendering (as a stored answer's) is built on the
  // delegate's worker thread, not in the GUI thread's event handlers: the row keeps its growing
  // rendering until the finished one is swapped in, which is then exactly the document a direct
  // render of the whole text gives, with its tables, lists, code and links, and the row is
  // measured again to its height.
  void aFinishedAnswerIsRenderedWholeOffTheGuiThread() {
    ConversationModel model;
    MessageListView view;
    auto* delegate = new CountingDelegate(&view);
    QVERIFY(showList(view, model, delegate));
    model.appendUser(QStringLiteral("Explain the router."));
    model.beginAnswer(QStringLiteral("r"));
    const QModelIndex answer = model.index(1);
    QString full;
    for (int i = 0; i < 6; ++i) {
      full += QStringLiteral(
                  "## Part %1\nThe router samples [nodes](https://example.com/%1) "
                  "softly.\n| node | load |\n|---|---|\n| a | 0.%1 |\n| b | 0.9 |\n"
                  "- one\n- two\n\n```cpp\nint main() { return %1; }\n```\n\n")
                  .arg(i);
    }
    full += QStringLiteral("The end, with `code`.");
    int n = 0;
    for (qsizetype at = 0; at < full.size(); at += 40) {
      model.onToken(QStringLiteral("r"), n++, full.mid(at, 40));
      QTest::qWait(MessageDelegate::kRerenderMs / 2);
    }
    QTest::qWait(MessageDelegate::kRerenderMs * 3);
    QStyleOptionViewItem option;
    option.initFrom(view.viewport());
    option.rect = view.visualRect(answer);
    option.widget = &view;
    const QTextDocument* growing = delegate->document(option, answer);
    const int renders = delegate->renderCount();
    const int background = delegate->backgroundRenderCount();

    AnswerSummary done;
    done.finishReason = QStringLiteral("stop");
    model.onFinished(QStringLiteral("r"), done);
    // Not rendered in the handlers the finish ran (the list measured the row in them): the row
    // still shows its growing rendering, the whole one is being built elsewhere.
    QVERIFY(delegate->isRenderPending(answer));
    QCOMPARE(delegate->renderCount(), renders);
    QCOMPARE(delegate->document(option, answer), growing);
    QVERIFY(delegate->isRenderPending(answer));

    QTRY_VERIFY(!delegate->isRenderPending(answer));
    QCOMPARE(delegate->backgroundRenderCount(), background + 1);
    QCOMPARE(delegate->renderCount(), renders + 1);
    const QTextDocument* finished = delegate->document(option, answer);
    QVERIFY(finished != growing);
    QCOMPARE(finished->thread(), view.thread());
    const auto whole = MessageDelegate::renderMarkdown(full, option.font, option.palette);
    QCOMPARE(finished->toHtml(), whole->toHtml());
    QCOMPARE(finished->toMarkdown(), whole->toMarkdown());
    // Laid out to the row's width already, and the row measured to it.
    whole->setTextWidth(finished->textWidth());
    QCOMPARE(finished->size(), whole->size());
    QTest::qWait(MessageDelegate::kRerenderMs * 2);
    QCOMPARE(view.visualRect(answer).height(), delegate->sizeHint(option, answer).height());
    QCOMPARE(delegate->renderCount(), renders + 1);  // not rendered again
    checkStacked(view, *delegate, model);
  }

  // A growing answer is repainted from its last finished block down (the rest of the viewport
  // only moves as the list follows the newest text): what is on screen after each re-render is
  // pixel for pixel what a full repaint of the list shows, through paragraphs, headings, tables,
  // lists and code blocks, before and after the answer fills the viewport.
  void aGrowingAnswerRepaintsOnlyItsNewLinesAndShowsAFullRepaint() {
    ConversationModel model;
    model.appendUser(QStringLiteral("Explain the router."));
    model.beginAnswer(QStringLiteral("r"));
    MessageListView view;
    QVERIFY(showList(view, model, new MessageDelegate(&view)));
    QScrollBar* bar = view.verticalScrollBar();
    view.setFollowsEnd(true);
    // The viewport's paint events: how much of it each repainted.
    struct PaintLog : QObject {
      bool eventFilter(QObject*, QEvent* event) override {
        if (event->type() == QEvent::Paint) rects.append(static_cast<QPaintEvent*>(event)->rect());
        return false;
      }
      QList<QRect> rects;
    } paints;
    view.viewport()->installEventFilter(&paints);
    const auto onScreen = [&view] { return view.screen()->grabWindow(view.winId()).toImage(); };

    QString full;
    for (int i = 0; i < 4; ++i) {
      full += QStringLiteral(
                  "## Part %1\nThe router samples [nodes](https://example.com/%1) softly, "
                  "by their saturation vector, so that no node takes the whole peak.\n\n"
                  "| node | load |\n|---|---|\n| a | 0.%1 |\n| b | 0.9 |\n\n- one\n- two\n\n"
                  "```cpp\nint main() {\n  return %1;\n}\n```\n\n")
                  .arg(i);
    }
    int partial = 0, steps = 0, n = 0;
    for (qsizetype at = 0; at < full.size(); at += 23, ++steps) {
      paints.rects.clear();
      model.onToken(QStringLiteral("r"), n++, full.mid(at, 23));
      // Past kRerenderMs since the last rendering: the list re-renders and repaints the row now.
      QTest::qWait(MessageDelegate::kRerenderMs + 40);
      QTRY_VERIFY(!paints.rects.isEmpty());  // (a loaded machine can be late)
      const QImage shown = onScreen();
      for (const QRect& r : std::as_const(paints.rects)) {
        if (r.height() < view.viewport()->height()) ++partial;
      }
      view.viewport()->repaint();
      QTest::qWait(10);
      const QImage whole = onScreen();
      QVERIFY2(samePixels(shown, whole),
               qPrintable(QStringLiteral("step %1 (%2 characters): the screen differs from a "
                                         "full repaint")
                              .arg(steps)
                              .arg(at + 23)));
    }
    // The answer outgrew the viewport (the list followed it), and most re-renders repainted only
    // a strip.
    QVERIFY(bar->value() > 0);
    QCOMPARE(bar->value(), bar->maximum());
    QVERIFY2(partial > steps / 2, qPrintable(QStringLiteral("%1 of %2").arg(partial).arg(steps)));
  }

  void scrollingMeasuresOnlyTheRowsComingIntoView() {
    ConversationModel model;
    fill(model);
    MessageListView view;
    auto* delegate = new CountingDelegate(&view);
    QVERIFY(showList(view, model, delegate));
    view.scrollToBottom();
    QTest::qWait(200);
    const int layouts = view.fullLayouts();
    QScrollBar* bar = view.verticalScrollBar();
    delegate->clear();
    const int start = bar->value();
    for (int step = 0; step < 40; ++step) {
      bar->setValue(bar->value() - bar->pageStep());
      QCoreApplication::processEvents();
    }
    QTest::qWait(100);
    QCOMPARE(view.fullLayouts(), layouts);
    QVERIFY(bar->value() < start);
    // 40 pages of 2-4 messages each: a few hundred rows at most, not 40 × 3,000.
    QVERIFY2(delegate->calls < 1000, qPrintable(QString::number(delegate->calls)));
    QVERIFY2(delegate->asked.size() < 400, qPrintable(QString::number(delegate->asked.size())));
    checkStacked(view, *delegate, model);

    // Keys scroll by pixels (a message can be taller than the viewport).
    view.setFocus();
    const int before = bar->value();
    QTest::keyClick(&view, Qt::Key_PageUp);
    QCOMPARE(bar->value(), std::max(0, before - bar->pageStep()));
    QTest::keyClick(&view, Qt::Key_End);
    QCOMPARE(bar->value(), bar->maximum());
    QTest::keyClick(&view, Qt::Key_Home);
    QCOMPARE(bar->value(), 0);
    QTest::qWait(50);
    checkStacked(view, *delegate, model);

    // Rows inserted and removed (a regenerated answer replaces the rows after it).
    bar->setValue(bar->maximum());
    QTest::qWait(50);
    const int last = model.rowCount() - 1;
    QVERIFY(model.regenerate(last, QStringLiteral("again")));
    model.onToken(QStringLiteral("again"), 0, QStringLiteral("A shorter answer."));
    AnswerSummary done;
    done.finishReason = QStringLiteral("stop");
    model.onFinished(QStringLiteral("again"), done);
    QTest::qWait(MessageDelegate::kRerenderMs * 2);
    QCOMPARE(view.fullLayouts(), layouts);
    QCOMPARE(view.contentHeight(), bar->maximum() + view.viewport()->height());
    checkStacked(view, *delegate, model);
  }

  void theListIsAccessible() {
    ConversationModel model;
    model.appendUser(QStringLiteral("Hello"));
    model.beginAnswer(QStringLiteral("r"));
    model.onToken(QStringLiteral("r"), 0, QStringLiteral("Hi **there**"));
    MessageListView view;
    view.setAccessibleName(QStringLiteral("Messages"));
    QVERIFY(showList(view, model, new MessageDelegate(&view), {500, 400}));
    QAccessibleInterface* iface = QAccessible::queryAccessibleInterface(&view);
    QVERIFY(iface);
    QCOMPARE(iface->role(), QAccessible::List);
    QCOMPARE(iface->text(QAccessible::Name), QStringLiteral("Messages"));
    QVERIFY(iface->tableInterface());
    QCOMPARE(iface->tableInterface()->rowCount(), 2);
    QAccessibleInterface* cell = iface->tableInterface()->cellAt(0, 0);
    QVERIFY(cell);
    QVERIFY(!cell->rect().isEmpty());
  }
};

QTEST_MAIN(TestMessageList)
#include "test_message_list.moc"
