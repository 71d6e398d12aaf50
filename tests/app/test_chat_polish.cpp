// The rest of the chat app (issues 7 and 9), with real parts: a real SQLite history file, the
// bundled router and a synthetic worker as child processes, a loopback HTTP server standing in
// for an OpenAI-compatible endpoint, and a real X server.
// - per-conversation settings are kept with the conversation (across a reopened store) and
//   reach the request: the system prompt and max tokens change what the worker answers; every
//   setting is in the body an OpenAI-compatible endpoint receives; the model list is asked for
// - export → import keeps every message of every branch, trace and receipt; importing twice
//   makes two conversations; a malformed or foreign file changes nothing and says why
// - the first-run screen shows once, offers the model manager; the shortcuts dialog lists
//   the window's real shortcuts; every control of the window has an accessible name.
#include <QAbstractButton>
#include <QAbstractItemView>
#include <QAbstractSpinBox>
#include <QAccessible>
#include <QComboBox>
#include <QFile>
#include <QHostAddress>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTableWidget>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QTest>
#include <QTextEdit>
#include <QTimer>

#include "app/app_controller.h"
#include "app/app_settings.h"
#include "app/chat_store.h"
#include "app/conversation_io.h"
#include "app/grpc_chat_backend.h"
#include "app/openai_chat_backend.h"
#include "app/service_supervisor.h"
#include "router/worker/synthetic_engine.h"
#include "ui/chat_view.h"
#include "ui/generation_bar.h"
#include "ui/main_window.h"
#include "ui/message_delegate.h"
#include "ui/model_manager_dialog.h"
#include "ui/settings_dialog.h"
#include "ui/shortcuts_dialog.h"
#include "ui/theme.h"
#include "ui/welcome_dialog.h"

using namespace tidelane;
using Model = ui::ConversationModel;

namespace {

QString answerOf(const std::vector<worker::Message>& messages, std::uint32_t maxTokens) {
  std::string s;
  for (const auto& t : worker::SyntheticEngine::AnswerTokens(messages, maxTokens)) s += t;
  return QString::fromStdString(s);
}

// Controls a person can operate, not the parts inside one (a spin box's line edit, a
// combo box's popup list, scroll bars).
bool interactive(const QWidget* w) {
  for (const QWidget* p = w->parentWidget(); p; p = p->parentWidget()) {
    if (qobject_cast<const QAbstractSpinBox*>(p) || qobject_cast<const QComboBox*>(p) ||
        qobject_cast<const QAbstractItemView*>(p)) {
      return false;
    }
  }
  if (w->inherits("QComboBoxPrivateContainer")) return false;
  return qobject_cast<const QAbstractButton*>(w) || qobject_cast<const QComboBox*>(w) ||
         qobject_cast<const QAbstractSpinBox*>(w) || qobject_cast<const QLineEdit*>(w) ||
         qobject_cast<const QPlainTextEdit*>(w) || qobject_cast<const QTextEdit*>(w) ||
         qobject_cast<const QAbstractItemView*>(w);
}

// What a screen reader hears as the control's name.
QString spokenName(QWidget* w) {
  if (!w->accessibleName().isEmpty()) return w->accessibleName();
  QAccessibleInterface* a = QAccessible::queryAccessibleInterface(w);
  return a ? a->text(QAccessible::Name) : QString();
}

QStringList unnamedControls(QWidget* root) {
  QStringList out;
  QList<QWidget*> all = root->findChildren<QWidget*>();
  all.prepend(root);
  for (QWidget* w : all) {
    if (!interactive(w)) continue;
    if (spokenName(w).trimmed().isEmpty()) {
      out.append(QStringLiteral("%1 \"%2\" in %3")
                     .arg(QString::fromLatin1(w->metaObject()->className()), w->objectName(),
                          w->parentWidget() ? w->parentWidget()->objectName() : QString()));
    }
  }
  return out;
}

}  // namespace

class TestChatPolish : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    // Settings of their own: the first-run flag, presets and window state start empty.
    qputenv("XDG_CONFIG_HOME", home_.filePath(QStringLiteral("config")).toUtf8());
    QCoreApplication::setOrganizationName(QStringLiteral("TidelaneTest"));
    QCoreApplication::setApplicationName(QStringLiteral("TidelanePolishTest"));
    QVERIFY(QSettings().fileName().startsWith(home_.path()));
  }

  void settingsAreKeptPerConversationAndReachTheWorker() {
    app::ServiceSupervisor::Options options;
    options.binDir = QStringLiteral(TIDELANE_BIN_DIR);
    options.dataDir = data_.path();
    options.workerProfile = QStringLiteral("high");
    app::ServiceSupervisor supervisor(options);
    QSignalSpy ready(&supervisor, &app::ServiceSupervisor::ready);
    supervisor.start();
    QVERIFY(ready.wait(30000));

    app::GrpcChatBackend backend;
    backend.setEndpoint(supervisor.grpcAddress(), supervisor.token());
    const QString db = data_.filePath(QStringLiteral("settings.sqlite"));
    auto store = std::make_unique<app::ChatStore>();
    QVERIFY2(store->open(db), qPrintable(store->lastError()));
    auto view = std::make_unique<ui::ChatView>(&backend, store.get());

    // The endpoint's models fill the picker.
    QSignalSpy listed(&backend, &ui::ChatBackend::modelsListed);
    backend.requestModels();
    QVERIFY(listed.wait(10000));
    QVERIFY2(listed[0][1].toString().isEmpty(), qPrintable(listed[0][1].toString()));
    const QStringList models = listed[0][0].toStringList();
    QVERIFY(!models.isEmpty());
    auto* picker = view->findChild<QComboBox*>(QStringLiteral("modelPicker"));
    QVERIFY(picker);
    QTRY_VERIFY(picker->findData(models.first()) >= 0);

    // New chats start from the defaults.
    ui::ConversationSettings defaults;
    defaults.maxTokens = 9;
    view->setDefaultSettings(defaults);
    view->newConversation();
    QCOMPARE(view->conversationSettings(), defaults);

    // The "Concise" preset and 5 tokens: both reach the worker, whose answer depends on them.
    auto* bar = view->generationBar();
    bar->choosePreset(QStringLiteral("concise"));
    auto* maxTokens = view->findChild<QSpinBox*>(QStringLiteral("maxTokens"));
    auto* temperature = view->findChild<QDoubleSpinBox*>(QStringLiteral("temperature"));
    QVERIFY(maxTokens && temperature);
    maxTokens->setValue(5);
    temperature->setValue(0.3);
    const ui::ConversationSettings chosen = view->conversationSettings();
    QCOMPARE(chosen.presetId, QStringLiteral("concise"));
    QVERIFY(!chosen.systemPrompt.isEmpty());
    QCOMPARE(chosen.maxTokens, 5);
    QCOMPARE(chosen.temperature, 0.3);

    QSignalSpy finished(&backend, &ui::ChatBackend::finished);
    view->sendText(QStringLiteral("How does routing work?"));
    QVERIFY(finished.wait(30000));
    QCOMPARE(store->conversation(view->conversationId()).settingsJson, chosen.toJsonText());
    const QString expected = answerOf(
        {{"system", chosen.systemPrompt.toStdString()}, {"user", "How does routing work?"}}, 5);
    QCOMPARE(view->model()->index(1).data(Model::TextRole).toString(), expected);
    QCOMPARE(finished[0][1].value<ui::AnswerSummary>().completionTokens, 5);
    // Without the settings the worker would have answered otherwise.
    QVERIFY(expected != answerOf({{"user", "How does routing work?"}}, 0));

    // Kept with the conversation: a reopened store and a fresh view answer it the same way.
    const qint64 id = view->conversationId();
    QVERIFY(id > 0);
    QTRY_COMPARE(store->messages(id).value(1).state, ui::MessageState::Complete);
    view.reset();
    store.reset();
    store = std::make_unique<app::ChatStore>();
    QVERIFY(store->open(db));
    view = std::make_unique<ui::ChatView>(&backend, store.get());
    view->openConversation(id);
    QCOMPARE(view->conversationSettings().toJsonText(), chosen.toJsonText());
    QCOMPARE(view->conversationSettings(), chosen);
    QCOMPARE(view->findChild<QSpinBox*>(QStringLiteral("maxTokens"))->value(), 5);
    // Another conversation keeps its own.
    view->newConversation();
    QCOMPARE(view->conversationSettings(), ui::ConversationSettings{});
  }

  void everySettingIsInTheOpenAiRequest() {
    // A loopback endpoint that records the request body and answers one token.
    QTcpServer server;
    QVERIFY(server.listen(QHostAddress::LocalHost));
    QByteArray received;
    connect(&server, &QTcpServer::newConnection, this, [&server, &received] {
      QTcpSocket* socket = server.nextPendingConnection();
      auto buffer = std::make_shared<QByteArray>();
      connect(socket, &QTcpSocket::readyRead, socket, [socket, buffer, &received] {
        *buffer += socket->readAll();
        const qsizetype end = buffer->indexOf("\r\n\r\n");
        if (end < 0) return;
        const QByteArray headers = buffer->left(end).toLower();
        const qsizetype at = headers.indexOf("content-length:");
        const int length = at < 0 ? 0 : headers.mid(at + 15).split('\r').first().trimmed().toInt();
        if (buffer->size() < end + 4 + length) return;
        received = buffer->mid(end + 4, length);
        socket->write(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
            "data: [DONE]\n\n");
        socket->disconnectFromHost();
      });
    });
    app::OpenAiChatBackend backend;
    backend.setEndpoint(QUrl(QStringLiteral("http://127.0.0.1:%1").arg(server.serverPort())),
                        QStringLiteral("k"), QStringLiteral("endpoint-model"));
    ui::ChatView view(&backend);
    ui::ConversationSettings s;
    s.presetId = QStringLiteral("teacher");
    s.systemPrompt = QStringLiteral("Explain like a teacher.");
    s.model = QStringLiteral("chosen-model");
    s.temperature = 0.7;
    s.topP = 0.9;
    s.maxTokens = 64;
    view.setConversationSettings(s);
    QSignalSpy finished(&backend, &ui::ChatBackend::finished);
    view.sendText(QStringLiteral("Hello"));
    QVERIFY(finished.wait(15000));
    const QJsonObject body = QJsonDocument::fromJson(received).object();
    QCOMPARE(body.value(QStringLiteral("model")).toString(), QStringLiteral("chosen-model"));
    QCOMPARE(body.value(QStringLiteral("temperature")).toDouble(), 0.7);
    QCOMPARE(body.value(QStringLiteral("top_p")).toDouble(), 0.9);
    QCOMPARE(body.value(QStringLiteral("max_tokens")).toInt(), 64);
    const QJsonArray messages = body.value(QStringLiteral("messages")).toArray();
    QCOMPARE(messages.size(), 2);
    QCOMPARE(messages[0].toObject().value(QStringLiteral("role")).toString(),
             QStringLiteral("system"));
    QCOMPARE(messages[0].toObject().value(QStringLiteral("content")).toString(), s.systemPrompt);
    QCOMPARE(messages[1].toObject().value(QStringLiteral("content")).toString(),
             QStringLiteral("Hello"));

    // Defaults are left to the endpoint: nothing of them is sent.
    view.setConversationSettings({});
    received.clear();
    view.sendText(QStringLiteral("Again"));
    QVERIFY(finished.wait(15000));
    const QJsonObject plain = QJsonDocument::fromJson(received).object();
    QCOMPARE(plain.value(QStringLiteral("model")).toString(), QStringLiteral("endpoint-model"));
    QVERIFY(!plain.contains(QStringLiteral("temperature")));
    QVERIFY(!plain.contains(QStringLiteral("top_p")));
    QVERIFY(!plain.contains(QStringLiteral("max_tokens")));
    QCOMPARE(plain.value(QStringLiteral("messages"))
                 .toArray()
                 .first()
                 .toObject()
                 .value(QStringLiteral("role"))
                 .toString(),
             QStringLiteral("user"));
  }

  void exportThenImportKeepsEveryMessageOfEveryBranch() {
    const QString db = data_.filePath(QStringLiteral("export.sqlite"));
    app::ChatStore store;
    QVERIFY(store.open(db));
    const qint64 id = store.createConversation();
    const qint64 q1 = store.appendMessage(id, QStringLiteral("user"), QStringLiteral("Why tides?"),
                                          ui::MessageState::Complete);
    const qint64 a1 = store.appendMessage(id, QStringLiteral("assistant"),
                                          QStringLiteral("The **moon**.\n\n```\ncode\n```"),
                                          ui::MessageState::Complete, q1);
    QVERIFY(store.finishMessage(a1, ui::MessageState::Complete,
                                QStringLiteral(R"({"line":"local · TTFT 12 ms","node":"local"})")));
    const QString receipt = QStringLiteral(R"({"v":1, "sig":"abc"})");  // kept byte for byte
    QVERIFY(store.setReceipt(a1, receipt));
    // A regenerated answer (sibling of a1) and an edited question (sibling of q1) with its answer.
    const qint64 a2 =
        store.appendMessage(id, QStringLiteral("assistant"), QStringLiteral("Gravity, mostly."),
                            ui::MessageState::Stopped, q1);
    const qint64 q2 = store.appendMessage(id, QStringLiteral("user"),
                                          QStringLiteral("Why are tides twice a day?"),
                                          ui::MessageState::Complete);
    store.appendMessage(id, QStringLiteral("assistant"), QStringLiteral("Two bulges."),
                        ui::MessageState::Complete, q2);
    ui::ConversationSettings s;
    s.presetId = QStringLiteral("concise");
    s.systemPrompt = QStringLiteral("Be brief.");
    s.maxTokens = 100;
    QVERIFY(store.setModel(id, QStringLiteral("m1"), s.toJsonText()));
    Q_UNUSED(a2);

    const QString json = data_.filePath(QStringLiteral("chat.json"));
    const QString md = data_.filePath(QStringLiteral("chat.md"));
    QString error;
    QVERIFY2(app::ConversationIo::exportToFile(store, id, app::ExportFormat::Json, json, &error),
             qPrintable(error));
    QVERIFY2(app::ConversationIo::exportToFile(store, id, app::ExportFormat::Markdown, md, &error),
             qPrintable(error));
    QFile mdFile(md);
    QVERIFY(mdFile.open(QIODevice::ReadOnly));
    const QString markdown = QString::fromUtf8(mdFile.readAll());
    for (const auto& m : store.messages(id))
      QVERIFY2(markdown.contains(m.content), qPrintable(m.content));
    QVERIFY(markdown.contains(QStringLiteral("branch 2 of 2")));
    QVERIFY(markdown.contains(QStringLiteral("Be brief.")));

    const qint64 first = app::ConversationIo::importFromFile(store, json, &error);
    QVERIFY2(first > 0, qPrintable(error));
    const qint64 second = app::ConversationIo::importFromFile(store, json, &error);
    QVERIFY2(second > 0 && second != first, qPrintable(error));
    QCOMPARE(store.conversations().size(), 3);  // two imports: two new ones, nothing merged

    const auto compare = [&store, id](qint64 copy) {
      const auto a = store.messages(id);
      const auto b = store.messages(copy);
      QCOMPARE(b.size(), a.size());
      QHash<qint64, qint64> map;  // original id → copy id (same order)
      for (int i = 0; i < a.size(); ++i) map.insert(a[i].id, b[i].id);
      for (int i = 0; i < a.size(); ++i) {
        QCOMPARE(b[i].role, a[i].role);
        QCOMPARE(b[i].content, a[i].content);
        QCOMPARE(b[i].state, a[i].state);
        QCOMPARE(b[i].parentId, map.value(a[i].parentId, 0));
        QCOMPARE(QJsonDocument::fromJson(b[i].traceJson.toUtf8()),
                 QJsonDocument::fromJson(a[i].traceJson.toUtf8()));
        QCOMPARE(b[i].receiptJson, a[i].receiptJson);
        QCOMPARE(b[i].created, a[i].created);
      }
      const auto ci = store.conversation(copy);
      QCOMPARE(ci.title, store.conversation(id).title);
      QCOMPARE(ci.model, QStringLiteral("m1"));
      QCOMPARE(ui::ConversationSettings::fromJsonText(ci.settingsJson, ci.model),
               ui::ConversationSettings::fromJsonText(store.conversation(id).settingsJson,
                                                      QStringLiteral("m1")));
    };
    compare(first);
    compare(second);
    // Still there after the store is reopened, and searchable.
    store.close();
    QVERIFY(store.open(db));
    compare(second);
    QCOMPARE(store.search(QStringLiteral("bulges")).size(), 3);
  }

  void aMalformedImportChangesNothingAndSaysWhy() {
    const QString db = data_.filePath(QStringLiteral("malformed.sqlite"));
    app::ChatStore store;
    QVERIFY(store.open(db));
    const qint64 id = store.createConversation();
    store.appendMessage(id, QStringLiteral("user"), QStringLiteral("Keep me"),
                        ui::MessageState::Complete);
    const auto write = [this](const QString& name, const QByteArray& bytes) {
      const QString path = data_.filePath(name);
      QFile f(path);
      if (f.open(QIODevice::WriteOnly)) f.write(bytes);
      return path;
    };
    const QByteArray good =
        R"({"format":"tidelane-conversation","version":1,"conversation":{"title":"T"},)"
        R"("messages":[{"id":1,"role":"user","content":"a"},)"
        R"({"id":2,"role":"assistant","content":"b","parent":1}]})";
    const QList<QPair<QString, QByteArray>> cases{
        {QStringLiteral("not valid JSON"), "{\"format\": \"tidelane-conv"},
        {QStringLiteral("not a Tidelane conversation"), R"({"messages": []})"},
        {QStringLiteral("format version 9"),
         QByteArray(good).replace("\"version\":1", "\"version\":9")},
        {QStringLiteral("Message 2 follows message 7"),
         QByteArray(good).replace("\"parent\":1", "\"parent\":7")},
        {QStringLiteral("unknown role \"wizard\""),
         QByteArray(good).replace("\"role\":\"assistant\"", "\"role\":\"wizard\"")},
        {QStringLiteral("Message 2 has no text"),
         QByteArray(good).replace("\"content\":\"b\"", "\"content\":3")},
    };
    int n = 0;
    for (const auto& [why, bytes] : cases) {
      QString error;
      const QString path = write(QStringLiteral("bad%1.json").arg(n++), bytes);
      QCOMPARE(app::ConversationIo::importFromFile(store, path, &error), 0);
      QVERIFY2(error.contains(why), qPrintable(error + QStringLiteral(" / ") + why));
      QVERIFY2(error.contains(QStringLiteral("Nothing was changed")), qPrintable(error));
      QCOMPARE(store.conversations().size(), 1);
      QCOMPARE(store.messages(id).size(), 1);
    }
    // The good file goes in (the cases above were refused for what they said).
    QString error;
    QVERIFY2(app::ConversationIo::importFromFile(store, write(QStringLiteral("good.json"), good),
                                                 &error) > 0,
             qPrintable(error));
    store.close();

    // In the app: the window says so, and the history keeps what it had.
    app::AppController controller(app::AppSettings{}, QStringLiteral(TIDELANE_BIN_DIR),
                                  data_.path(), db);
    const int before = static_cast<int>(controller.store()->conversations().size());
    QCOMPARE(controller.importConversation(data_.filePath(QStringLiteral("bad1.json")), &error), 0);
    QVERIFY(error.contains(QStringLiteral("not a Tidelane conversation")));
    auto* box = controller.window()->findChild<QMessageBox*>(QStringLiteral("errorBox"));
    QVERIFY(box && box->isVisible());
    QVERIFY(box->text().contains(QStringLiteral("not a Tidelane conversation")));
    box->close();
    QCOMPARE(controller.store()->conversations().size(), before);
  }

  void theFirstRunScreenShowsOnceAndOffersALargerModel() {
    QVERIFY(app::AppSettings::load().showWelcome);
    {
      QTemporaryDir data;
      app::AppSettings settings = app::AppSettings::load();
      settings.workerProfile = QStringLiteral("high");  // the synthetic worker: quick to start
      app::AppController controller(settings, QStringLiteral(TIDELANE_BIN_DIR), data.path());
      controller.start();
      QVERIFY(QTest::qWaitForWindowExposed(controller.window()));
      auto* welcome = controller.window()->findChild<ui::WelcomeDialog*>();
      QVERIFY(welcome);
      QTRY_VERIFY(welcome->isVisible());
      const auto* text = welcome->findChild<QLabel*>(QStringLiteral("welcomeText"));
      QVERIFY(text->text().contains(QStringLiteral("offline")));
      QVERIFY(text->text().contains(QStringLiteral("not a general assistant")));
      // The bundled model's details, read from its file.
      const auto* params = welcome->findChild<QLabel*>(QStringLiteral("modelParameters"));
      QVERIFY2(params, "the bundled model's details are missing");
      QCOMPARE(params->text(), QStringLiteral("3.6M"));
      QVERIFY(unnamedControls(welcome).isEmpty());

      // "Get a larger model…" opens the model manager (modal: closed as soon as it shows).
      bool managerShown = false;
      QTimer::singleShot(0, this, [&managerShown] {
        auto* manager = qobject_cast<ui::ModelManagerDialog*>(QApplication::activeModalWidget());
        managerShown = manager != nullptr;
        if (manager) manager->reject();
      });
      welcome->findChild<QAbstractButton*>(QStringLiteral("getLargerModel"))->click();
      QVERIFY(managerShown);
      QTRY_VERIFY(controller.window()->findChild<ui::WelcomeDialog*>() == nullptr);
    }
    // Remembered: the next start goes straight to the chat, and Help → Welcome still shows it.
    QVERIFY(!app::AppSettings::load().showWelcome);
    app::AppController controller(app::AppSettings::load(), QStringLiteral(TIDELANE_BIN_DIR),
                                  data_.path(), data_.filePath(QStringLiteral("welcome.sqlite")));
    QVERIFY(controller.window()->findChild<ui::WelcomeDialog*>() == nullptr);
    controller.window()->findChild<QAction*>(QStringLiteral("welcomeAction"))->trigger();
    QVERIFY(controller.window()->findChild<ui::WelcomeDialog*>());
  }

  void theShortcutsDialogListsTheRealShortcuts() {
    app::GrpcChatBackend backend;
    app::ChatStore store;
    QVERIFY(store.open(data_.filePath(QStringLiteral("keys.sqlite"))));
    ui::MainWindow window(&backend, &store);
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    const auto entries = ui::ShortcutsDialog::collect(&window);
    const auto has = [&entries](const QString& action, const QKeySequence& keys) {
      for (const auto& e : entries) {
        if (e.action == action && e.keys == keys) return true;
      }
      return false;
    };
    QVERIFY(has(QStringLiteral("New chat"), QKeySequence(Qt::CTRL | Qt::Key_N)));
    QVERIFY(has(QStringLiteral("Search chats"), QKeySequence(Qt::CTRL | Qt::Key_F)));
    QVERIFY(has(QStringLiteral("Stop answer"), QKeySequence(Qt::Key_Escape)));
    QVERIFY(
        has(QStringLiteral("Copy last answer"), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_C)));
    QVERIFY(has(QStringLiteral("Monitor"), QKeySequence(Qt::CTRL | Qt::Key_M)));
    QVERIFY(has(QStringLiteral("Regenerate answer"), QKeySequence(Qt::CTRL | Qt::Key_R)));
    QVERIFY(has(QStringLiteral("Keyboard shortcuts"), QKeySequence(Qt::Key_F1)));
    QVERIFY(has(QStringLiteral("Keyboard shortcuts"), QKeySequence(Qt::CTRL | Qt::Key_Slash)));
    // Every action of the window with a shortcut is listed.
    for (const QAction* a : window.findChildren<QAction*>()) {
      for (const auto& k : a->shortcuts()) {
        QVERIFY2(
            has(QString(a->text()).remove(QLatin1Char('&')).remove(QStringLiteral("…")).trimmed(),
                k),
            qPrintable(a->text()));
      }
    }

    // F1 opens it, and it shows what the window has now (an action added later too).
    auto* extra = new QAction(QStringLiteral("Late action"), &window);
    extra->setShortcut(QKeySequence(Qt::CTRL | Qt::ALT | Qt::Key_L));
    window.addAction(extra);
    window.activateWindow();
    QVERIFY(QTest::qWaitForWindowActive(&window));
    QTest::keyClick(&window, Qt::Key_F1);
    ui::ShortcutsDialog* dialog = nullptr;
    QTRY_VERIFY((dialog = window.findChild<ui::ShortcutsDialog*>()) != nullptr);
    auto* table = dialog->findChild<QTableWidget*>(QStringLiteral("shortcutsTable"));
    QStringList rows;
    for (int r = 0; r < table->rowCount(); ++r) {
      rows.append(table->item(r, 0)->text() + QStringLiteral(" = ") + table->item(r, 1)->text());
    }
    QVERIFY2(rows.contains(
                 QStringLiteral("Late action = ") +
                 QKeySequence(Qt::CTRL | Qt::ALT | Qt::Key_L).toString(QKeySequence::NativeText)),
             qPrintable(rows.join(QLatin1Char('\n'))));
    QCOMPARE(table->rowCount(), static_cast<int>(ui::ShortcutsDialog::collect(&window).size()));
    QVERIFY(unnamedControls(dialog).isEmpty());
    dialog->close();
  }

  void everyControlHasAnAccessibleName() {
    app::GrpcChatBackend backend;
    app::ChatStore store;
    QVERIFY(store.open(data_.filePath(QStringLiteral("a11y.sqlite"))));
    ui::MainWindow window(&backend, &store);
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    const QStringList unnamed = unnamedControls(&window);
    QVERIFY2(unnamed.isEmpty(), qPrintable(QStringLiteral("controls without an accessible name: ") +
                                           unnamed.join(QStringLiteral("; "))));
  }

  void darkAndLightThemesAreReadable() {
    // Chosen in the settings dialog.
    ui::EndpointSettings current;
    current.theme = QStringLiteral("dark");
    ui::SettingsDialog dialog(current);
    auto* theme = dialog.findChild<QComboBox*>(QStringLiteral("theme"));
    QVERIFY(theme && !theme->accessibleName().isEmpty());
    QCOMPARE(dialog.values().theme, QStringLiteral("dark"));
    theme->setCurrentIndex(theme->findData(QStringLiteral("light")));
    QCOMPARE(dialog.values().theme, QStringLiteral("light"));
    QVERIFY(unnamedControls(&dialog).isEmpty());

    // The chat renders its messages again in the new colours.
    app::GrpcChatBackend backend;
    ui::ChatView view(&backend);
    view.show();
    auto* list = view.findChild<QAbstractItemView*>(QStringLiteral("messages"));
    const QAbstractItemDelegate* before = list->itemDelegate();
    ui::applyTheme(ui::Theme::Dark);
    QTRY_VERIFY(list->itemDelegate() != before);
    QVERIFY(qobject_cast<ui::MessageDelegate*>(list->itemDelegate()));

    ui::applyTheme(ui::Theme::Dark);
    QPalette p = QApplication::palette();
    QVERIFY(p.color(QPalette::Base).lightness() < 80);
    QVERIFY(p.color(QPalette::Text).lightness() - p.color(QPalette::Base).lightness() > 120);
    QVERIFY(p.color(QPalette::Link).lightness() > 120);  // links and code stay visible
    ui::applyTheme(ui::Theme::Light);
    p = QApplication::palette();
    QVERIFY(p.color(QPalette::Base).lightness() > 200);
    QVERIFY(p.color(QPalette::Base).lightness() - p.color(QPalette::Text).lightness() > 120);
    QCOMPARE(ui::themeFromName(ui::themeName(ui::Theme::Dark)), ui::Theme::Dark);
    QCOMPARE(ui::themeFromName(QStringLiteral("something else")), ui::Theme::System);
  }

  void windowStateIsRemembered() {
    app::GrpcChatBackend backend;
    app::ChatStore store;
    QVERIFY(store.open(data_.filePath(QStringLiteral("state.sqlite"))));
    const qint64 id = store.createConversation(QStringLiteral("Kept open"));
    {
      ui::MainWindow window(&backend, &store);
      window.show();
      QVERIFY(QTest::qWaitForWindowExposed(&window));
      window.resize(1000, 700);
      window.chatView()->openConversation(id);
      window.close();  // saves
    }
    ui::MainWindow window(&backend, &store);
    window.restoreWindowState();
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    QCOMPARE(window.chatView()->conversationId(), id);
    QCOMPARE(window.size(), QSize(1000, 700));
  }

 private:
  QTemporaryDir home_;
  QTemporaryDir data_;
};

QTEST_MAIN(TestChatPolish)
#include "test_chat_polish.moc"
