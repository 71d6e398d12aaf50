// Answers are Markdown: a fenced code block comes out in a fixed-pitch font on a tinted
// background, a table as a real QTextTable, inline code in monospace; the message list
// renders lazily (only rows that are painted) and shows a user's message as plain text.
#include <QFontInfo>
#include <QListView>
#include <QTest>
#include <QTextBlock>
#include <QTextDocument>
#include <QTextFrame>
#include <QTextTable>

#include "ui/conversation_model.h"
#include "ui/message_delegate.h"

using tidelane::ui::ConversationModel;
using tidelane::ui::MessageDelegate;

namespace {

const QString kAnswer = QStringLiteral(
    "# Tides\n\nUse `tidelane --help` first.\n\n"
    "```cpp\nint main() { return 0; }\n```\n\n"
    "| Lane | Speed |\n|------|-------|\n| prefill | fast |\n| decode | steady |\n");

bool isMonospace(const QTextCharFormat& f) {
  if (f.fontFixedPitch()) return true;
  const QFont font = f.font();
  return QFontInfo(font).fixedPitch() ||
         f.fontFamilies().toStringList().contains(QStringLiteral("monospace"));
}

QTextTable* firstTable(QTextDocument* doc) {
  for (QTextFrame* frame : doc->rootFrame()->childFrames()) {
    if (auto* t = qobject_cast<QTextTable*>(frame)) return t;
  }
  return nullptr;
}

}  // namespace

class TestMarkdownRender : public QObject {
  Q_OBJECT

 private slots:
  void codeBlocksAreMonospaceAndTablesAreTables() {
    QFont body(QStringLiteral("DejaVu Sans"), 10);
    const auto doc = MessageDelegate::renderMarkdown(kAnswer, body, QPalette());

    bool sawCode = false;
    for (QTextBlock b = doc->begin(); b.isValid(); b = b.next()) {
      if (!b.text().contains(QStringLiteral("int main"))) continue;
      sawCode = true;
      QVERIFY(b.blockFormat().background().style() != Qt::NoBrush);  // tinted band
      for (auto it = b.begin(); !it.atEnd(); ++it) {
        QVERIFY2(isMonospace(it.fragment().charFormat()), qPrintable(it.fragment().text()));
      }
    }
    QVERIFY(sawCode);

    bool sawInline = false;
    for (QTextBlock b = doc->begin(); b.isValid(); b = b.next()) {
      for (auto it = b.begin(); !it.atEnd(); ++it) {
        const auto f = it.fragment();
        if (f.text() == QStringLiteral("tidelane --help")) {
          sawInline = true;
          QVERIFY(isMonospace(f.charFormat()));
        } else if (f.text().contains(QStringLiteral("first"))) {
          QVERIFY(!f.charFormat().fontFixedPitch());  // the prose stays in the body font
        }
      }
    }
    QVERIFY(sawInline);

    QTextTable* table = firstTable(doc.get());
    QVERIFY(table);
    QCOMPARE(table->rows(), 3);
    QCOMPARE(table->columns(), 2);
    QCOMPARE(table->cellAt(1, 0).firstCursorPosition().block().text(), QStringLiteral("prefill"));
    QVERIFY(table->format().border() > 0);

    QVERIFY(doc->begin().blockFormat().headingLevel() == 1);
  }

  void theListRendersAnswersAsMarkdownLazily() {
    ConversationModel model;
    model.appendUser(QStringLiteral("| not | a table |\n|---|---|\n| plain | text |"));
    model.beginAnswer(QStringLiteral("r1"));
    model.onToken(QStringLiteral("r1"), 0, kAnswer);
    for (int i = 0; i < 200; ++i) {
      model.appendUser(QStringLiteral("filler %1").arg(i));
    }
    QListView view;
    auto* delegate = new MessageDelegate(&view);
    view.setItemDelegate(delegate);
    view.setModel(&model);
    view.setVerticalScrollMode(QAbstractItemView::ScrollPerPixel);
    view.resize(600, 400);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    // Only what is on screen was rendered, not all 202 messages.
    QTRY_VERIFY_WITH_TIMEOUT(delegate->renderCount() > 0, 10000);
    QVERIFY2(delegate->renderCount() < 50, qPrintable(QString::number(delegate->renderCount())));

    QStyleOptionViewItem option;
    option.initFrom(&view);
    option.rect = QRect(0, 0, view.viewport()->width(), 100);
    option.widget = &view;
    auto* answer = const_cast<QTextDocument*>(delegate->document(option, model.index(1)));
    QVERIFY(firstTable(answer));
    auto* user = const_cast<QTextDocument*>(delegate->document(option, model.index(0)));
    QVERIFY(!firstTable(user));  // a user's message is shown as typed
    QVERIFY(user->toPlainText().contains(QStringLiteral("| plain | text |")));
    // The answer's row is as tall as its rendered Markdown.
    QTRY_VERIFY_WITH_TIMEOUT(view.visualRect(model.index(1)).height() >= answer->size().height(),
                             5000);
  }

  // A streaming answer is parsed piecewise (only the part after its last finished block again):
  // at every step it shows the same text, code and tables as the whole answer rendered at once,
  // and once finished it is the whole rendering.
  void aGrowingAnswerRendersLikeTheWholeAnswer() {
    ConversationModel model;
    model.appendUser(QStringLiteral("Explain"));
    model.beginAnswer(QStringLiteral("r1"));
    QListView view;
    auto* delegate = new MessageDelegate(&view);
    view.setItemDelegate(delegate);
    view.setModel(&model);
    view.resize(600, 400);
    QStyleOptionViewItem option;
    option.initFrom(&view);
    option.rect = QRect(0, 0, 600, 100);
    option.widget = &view;

    const QString full = kAnswer + QStringLiteral("\n- one\n- two\n\n") + kAnswer;
    QString sent;
    int index = 0;
    for (qsizetype at = 0; at < full.size(); at += 7) {
      const QString token = full.mid(at, 7);
      model.onToken(QStringLiteral("r1"), index++, token);
      sent += token;
      QTest::qWait(MessageDelegate::kRerenderMs + 5);  // past the re-render throttle
      const QTextDocument* grown = delegate->document(option, model.index(1));
      const auto whole = MessageDelegate::renderMarkdown(sent, option.font, option.palette);
      // The same text; only empty blocks next to a table or list may differ while it grows
      // (the finished answer is rendered whole).
      const auto lines = [](const QTextDocument* d) {
        return d->toPlainText().split(QLatin1Char('\n'), Qt::SkipEmptyParts);
      };
      QCOMPARE(lines(grown), lines(whole.get()));
    }
    auto* grown = const_cast<QTextDocument*>(delegate->document(option, model.index(1)));
    QVERIFY(firstTable(grown));
    int tinted = 0;
    for (QTextBlock b = grown->begin(); b.isValid(); b = b.next()) {
      if (b.text().contains(QStringLiteral("int main"))) {
        QVERIFY(b.blockFormat().background().style() != Qt::NoBrush);
        ++tinted;
      }
    }
    QCOMPARE(tinted, 2);  // both code blocks, the second one parsed on its own

    tidelane::ui::AnswerSummary done;
    done.finishReason = QStringLiteral("stop");
    model.onFinished(QStringLiteral("r1"), done);
    const auto whole = MessageDelegate::renderMarkdown(full, option.font, option.palette);
    // Rendered whole on the delegate's worker thread, then swapped in: the same document.
    delegate->document(option, model.index(1));
    QTRY_VERIFY(!delegate->isRenderPending(model.index(1)));
    QCOMPARE(delegate->document(option, model.index(1))->toPlainText(), whole->toPlainText());
    QCOMPARE(delegate->document(option, model.index(1))->toHtml(), whole->toHtml());
  }
};

QTEST_MAIN(TestMarkdownRender)
#include "test_markdown_render.moc"
