// Receipt badges (issue 9): an answer that came with a receipt shows "verified" when the
// receipt holds and "invalid" when it was tampered with, keeps it in the history (also across a
// schema upgrade of an older history), and clicking the badge shows what was signed.
#include <QDialog>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QListView>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>

#include "app/chat_store.h"
#include "app/receipt_check.h"
#include "router/receipt/receipt.h"
#include "ui/chat_view.h"
#include "ui/receipt_dialog.h"

using namespace tidelane;
using Model = ui::ConversationModel;

namespace {

// Carries nothing: the test plays the backend's signals through the model itself.
class SilentBackend : public ui::ChatBackend {
 public:
  using ChatBackend::ChatBackend;
  bool isReady() const override { return true; }
  QString describe() const override { return QStringLiteral("test"); }
  QString send(const QList<ui::ChatTurn>&, int) override { return QStringLiteral("unused"); }
  void cancel(const QString&) override {}
};

const QStringList kTokens = {QStringLiteral("Tides "), QStringLiteral("turn "),
                             QStringLiteral("twice a day.")};

// A real receipt for kTokens, signed by a fresh worker and router identity.
QString makeReceipt(const QString& requestId) {
  const auto worker = receipt::Identity::Generate();
  const auto router = receipt::Identity::Generate();
  std::vector<std::string> tokens;
  for (const auto& t : kTokens) tokens.push_back(t.toStdString());
  receipt::WorkerStatement w;
  w.request_id = requestId.toStdString();
  w.worker_name = "local";
  w.model_kind = "synthetic";
  w.model_id = "tidelane-synthetic";
  w.model_sha256 = receipt::Sha256Hex("profile");
  w.prompt_encoding = "messages";
  w.prompt_sha256 = receipt::Sha256Strings({"user", "tides?"});
  w.resumed_prefix_sha256 = receipt::Sha256Strings({});
  w.output_to_index = tokens.size();
  w.output_sha256 = receipt::Sha256Strings(tokens);
  w.finish_reason = "stop";
  receipt::RouterStatement r;
  r.request_id = w.request_id;
  r.prompt_messages_sha256 = w.prompt_sha256;
  r.finish_reason = "stop";
  r.route = {{"local", 0, tokens.size(), "done", ""}};
  std::string problem;
  const auto e =
      receipt::Countersign(r, receipt::SignWorkerStatement(w, worker), tokens, router, &problem);
  if (!e) qFatal("cannot make a receipt: %s", problem.c_str());
  return QString::fromStdString(receipt::ToJsonDocument(*e));
}

// The same receipt with one signed field changed, as a forger would.
QString tamper(const QString& receiptJson) {
  QJsonObject doc = QJsonDocument::fromJson(receiptJson.toUtf8()).object();
  QJsonObject payload = doc.value(QStringLiteral("payload")).toObject();
  payload.insert(QStringLiteral("finish_reason"), QStringLiteral("length"));
  doc.insert(QStringLiteral("payload"), payload);
  return QString::fromUtf8(QJsonDocument(doc).toJson());
}

void answer(Model& model, const QString& requestId, const QString& receiptJson) {
  model.appendUser(QStringLiteral("tides?"));
  model.beginAnswer(requestId);
  for (int i = 0; i < kTokens.size(); ++i) model.onToken(requestId, i, kTokens[i]);
  ui::AnswerSummary s;
  s.finishReason = QStringLiteral("stop");
  s.receiptJson = receiptJson;
  model.onFinished(requestId, s);
}

ui::ReceiptBadge badgeOf(const QModelIndex& i) {
  return static_cast<ui::ReceiptBadge>(i.data(Model::ReceiptBadgeRole).toInt());
}

}  // namespace

class TestReceiptBadge : public QObject {
  Q_OBJECT

 private slots:
  void badgeFollowsVerification() {
    Model model;
    model.setReceiptChecker(&app::checkReceipt);
    answer(model, QStringLiteral("r-valid"), makeReceipt(QStringLiteral("r-valid")));
    QCOMPARE(badgeOf(model.index(1)), ui::ReceiptBadge::Verified);
    QVERIFY(model.index(1).data(Model::ReceiptProblemRole).toString().isEmpty());
    QVERIFY(model.index(1)
                .data(Model::ReceiptFieldsRole)
                .toStringList()
                .contains(QStringLiteral("request id: r-valid")));

    answer(model, QStringLiteral("r-bad"), tamper(makeReceipt(QStringLiteral("r-bad"))));
    QCOMPARE(badgeOf(model.index(3)), ui::ReceiptBadge::Invalid);
    QVERIFY2(model.index(3)
                 .data(Model::ReceiptProblemRole)
                 .toString()
                 .contains(QStringLiteral("router-signature")),
             qPrintable(model.index(3).data(Model::ReceiptProblemRole).toString()));

    // A receipt for another answer does not vouch for this one.
    Model other;
    other.setReceiptChecker(&app::checkReceipt);
    other.appendUser(QStringLiteral("tides?"));
    other.beginAnswer(QStringLiteral("r-x"));
    other.onToken(QStringLiteral("r-x"), 0, QStringLiteral("Something else entirely."));
    ui::AnswerSummary s;
    s.receiptJson = makeReceipt(QStringLiteral("r-x"));
    other.onFinished(QStringLiteral("r-x"), s);
    QCOMPARE(badgeOf(other.index(1)), ui::ReceiptBadge::Invalid);
    QVERIFY(other.index(1)
                .data(Model::ReceiptProblemRole)
                .toString()
                .contains(QStringLiteral("answer-mismatch")));

    // No receipt, no badge.
    answer(model, QStringLiteral("r-none"), {});
    QCOMPARE(badgeOf(model.index(5)), ui::ReceiptBadge::None);
  }

  void receiptIsKeptInTheHistory() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("history.sqlite"));
    const QString valid = makeReceipt(QStringLiteral("r-kept"));
    qint64 id = 0;
    {
      app::ChatStore store;
      QVERIFY2(store.open(path), qPrintable(store.lastError()));
      Model model;
      model.setStore(&store);
      model.setReceiptChecker(&app::checkReceipt);
      answer(model, QStringLiteral("r-kept"), valid);
      id = model.conversationId();
      QCOMPARE(store.messages(id).at(1).receiptJson, valid);
    }
    app::ChatStore store;
    QVERIFY2(store.open(path), qPrintable(store.lastError()));
    Model reloaded;
    reloaded.setStore(&store);
    reloaded.setReceiptChecker(&app::checkReceipt);
    reloaded.load(id);
    QCOMPARE(badgeOf(reloaded.index(1)), ui::ReceiptBadge::Verified);
    QCOMPARE(badgeOf(reloaded.index(0)), ui::ReceiptBadge::None);
  }

  void olderHistoryIsUpgradedKeepingItsChats() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("history.sqlite"));
    {
      // A history as version 1 of the schema wrote it.
      auto db = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), QStringLiteral("v1"));
      db.setDatabaseName(path);
      QVERIFY(db.open());
      QSqlQuery q(db);
      for (const char* sql :
           {"CREATE TABLE conversations(id INTEGER PRIMARY KEY, title TEXT NOT NULL DEFAULT '', "
            "created INTEGER NOT NULL, updated INTEGER NOT NULL, pinned INTEGER NOT NULL "
            "DEFAULT 0, model TEXT NOT NULL DEFAULT '', settings TEXT NOT NULL DEFAULT '{}', "
            "deleted_at INTEGER)",
            "CREATE INDEX conversations_by_order ON conversations(pinned DESC, updated DESC)",
            "CREATE TABLE messages(id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL "
            "REFERENCES conversations(id) ON DELETE CASCADE, role TEXT NOT NULL CHECK(role IN "
            "('system', 'user', 'assistant')), content TEXT NOT NULL DEFAULT '', created "
            "INTEGER NOT NULL, parent_id INTEGER REFERENCES messages(id) ON DELETE SET NULL, "
            "state TEXT NOT NULL DEFAULT 'complete' CHECK(state IN ('complete', 'streaming', "
            "'stopped', 'failed')), trace TEXT NOT NULL DEFAULT '{}')",
            "CREATE INDEX messages_by_conversation ON messages(conversation_id, id)",
            "CREATE INDEX messages_streaming ON messages(state) WHERE state = 'streaming'",
            "CREATE VIRTUAL TABLE message_text USING fts5(content, tokenize = 'unicode61 "
            "remove_diacritics 2')",
            "CREATE TRIGGER messages_unindex AFTER DELETE ON messages BEGIN DELETE FROM "
            "message_text WHERE rowid = old.id; END",
            "INSERT INTO conversations(id, title, created, updated) VALUES(1, 'old', 1, 1)",
            "INSERT INTO messages(id, conversation_id, role, content, created) "
            "VALUES(1, 1, 'user', 'hello from v1', 1)",
            "INSERT INTO messages(id, conversation_id, role, content, created, parent_id) "
            "VALUES(2, 1, 'assistant', 'an old answer', 2, 1)",
            "PRAGMA user_version = 1"}) {
        QVERIFY2(q.exec(QString::fromLatin1(sql)), qPrintable(q.lastError().text()));
      }
      db.close();
    }
    QSqlDatabase::removeDatabase(QStringLiteral("v1"));
    app::ChatStore store;
    QVERIFY2(store.open(path), qPrintable(store.lastError()));
    QVERIFY(QFile::exists(path + QStringLiteral(".v1.bak")));
    const auto messages = store.messages(1);
    QCOMPARE(messages.size(), 2);
    QCOMPARE(messages[1].content, QStringLiteral("an old answer"));
    QVERIFY(messages[1].receiptJson.isEmpty());
    QVERIFY2(store.setReceipt(2, QStringLiteral("{}")), qPrintable(store.lastError()));
    QCOMPARE(store.messages(1)[1].receiptJson, QStringLiteral("{}"));
  }

  void clickingTheBadgeShowsWhatWasSigned() {
    SilentBackend backend;
    ui::ChatView view(&backend);
    view.model()->setReceiptChecker(&app::checkReceipt);
    view.resize(700, 600);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    answer(*view.model(), QStringLiteral("r-ok"), makeReceipt(QStringLiteral("r-ok")));
    answer(*view.model(), QStringLiteral("r-forged"),
           tamper(makeReceipt(QStringLiteral("r-forged"))));
    auto* list = view.findChild<QListView*>(QStringLiteral("messages"));
    QVERIFY(list);
    auto* delegate = qobject_cast<ui::MessageDelegate*>(list->itemDelegate());
    QVERIFY(delegate);

    // Finds the badge in row `row` by asking the delegate where its links are, then clicks.
    const auto clickBadge = [&](int row) -> ui::ReceiptDialog* {
      list->scrollTo(view.model()->index(row));
      QTest::qWait(0);
      QStyleOptionViewItem option;
      option.initFrom(list);
      option.widget = list;
      option.rect = list->visualRect(view.model()->index(row));
      for (int y = option.rect.top(); y < option.rect.bottom(); y += 2) {
        for (int x = option.rect.left(); x < option.rect.right(); x += 4) {
          if (delegate->actionAt(option, view.model()->index(row), QPoint(x, y)) ==
              ui::MessageDelegate::Action::ShowReceipt) {
            // The dialog opens within the click (no event loop turn needed).
            QTest::mouseClick(list->viewport(), Qt::LeftButton, {}, QPoint(x + 2, y));
            return view.findChild<ui::ReceiptDialog*>();
          }
        }
      }
      return nullptr;
    };

    auto* dialog = clickBadge(1);
    QVERIFY2(dialog, "no clickable badge under the verified answer");
    QVERIFY(dialog->verdict()->text().startsWith(QStringLiteral("✓")));
    QStringList fields;
    for (int r = 0; r < dialog->table()->rowCount(); ++r) {
      fields.append(dialog->table()->item(r, 0)->text() + QStringLiteral("=") +
                    dialog->table()->item(r, 1)->text());
    }
    QVERIFY2(fields.contains(QStringLiteral("request id=r-ok")), qPrintable(fields.join(',')));
    QVERIFY(fields.contains(QStringLiteral("model=tidelane-synthetic")));
    QVERIFY(fields.contains(QStringLiteral("route 1=local tokens [0, 3) done")));
    dialog->close();
    QTRY_VERIFY(!view.findChild<ui::ReceiptDialog*>());

    dialog = clickBadge(3);
    QVERIFY2(dialog, "no clickable badge under the tampered answer");
    QVERIFY(dialog->verdict()->text().startsWith(QStringLiteral("✗")));
    QVERIFY(dialog->verdict()->text().contains(QStringLiteral("router-signature")));
    dialog->close();

    // An answer without a receipt has no badge to click.
    answer(*view.model(), QStringLiteral("r-plain"), {});
    QVERIFY(!clickBadge(5));
  }
};

QTEST_MAIN(TestReceiptBadge)
#include "test_receipt_badge.moc"
