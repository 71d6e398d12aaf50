// The model manager's library (app/model_library.h) with real files and real HTTP: the bundled
// model is listed with what its GGUF header says and corrupt copies are listed as errors;
// imports copy a checked model; downloads run against tests/tools/range_http_server.py (a
// Python server started here that honours Range and can stall or drop a response on
// request): progress, pause and resume with a Range request from the .part's size, resume
// after the library (the app) is restarted, a dropped connection resumed, the SHA-256
// checked, a wrong checksum and a non-model file kept out of the library, not enough free
// space refused before a byte is written, and cancel removing the partial file. Then the
// dialog over it (labelled controls, actions that follow the row) and "Use this model"
// restarting the bundled worker on the model chosen.
#include <signal.h>

#include <QAction>
#include <QApplication>
#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QProcess>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>

#include "app/app_controller.h"
#include "app/model_catalog.h"
#include "app/model_library.h"
#include "app/service_supervisor.h"
#include "ui/main_window.h"
#include "ui/model_manager_dialog.h"

using namespace tidelane;
using app::ModelTransfer;
using State = app::ModelTransfer::State;

namespace {

const QString kBundled =
    QStringLiteral(TIDELANE_SOURCE_DIR "/resources/models/tidelane-guide.gguf");

QString sha256Of(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  QCryptographicHash h(QCryptographicHash::Sha256);
  h.addData(&f);
  return QString::fromLatin1(h.result().toHex());
}

}  // namespace

class TestModelLibrary : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    QVERIFY(QFile::exists(kBundled));
    bundledSha_ = sha256Of(kBundled);
    QVERIFY(QFile::copy(kBundled, served_.filePath(QStringLiteral("guide.gguf"))));
    QFile junk(served_.filePath(QStringLiteral("junk.gguf")));
    QVERIFY(junk.open(QIODevice::WriteOnly));
    junk.write(QByteArray(300000, 'x'));
    junk.close();

    server_.setProgram(QStringLiteral("/usr/bin/python3"));
    server_.setArguments(
        {QStringLiteral(TIDELANE_SOURCE_DIR "/tests/tools/range_http_server.py"), served_.path()});
    server_.setProcessChannelMode(QProcess::ForwardedErrorChannel);
    server_.start();
    QVERIFY(server_.waitForStarted(10000));
    QTRY_VERIFY_WITH_TIMEOUT(server_.canReadLine() || server_.state() != QProcess::Running, 15000);
    const QByteArray line = server_.readLine().trimmed();
    QVERIFY2(line.startsWith("ready port="), line.constData());
    base_ = QStringLiteral("http://127.0.0.1:%1/").arg(QString::fromLatin1(line.mid(11)));
  }

  void cleanupTestCase() {
    server_.terminate();
    server_.waitForFinished(5000);
  }

  void init() {
    dir_ = std::make_unique<QTemporaryDir>();
    QVERIFY(dir_->isValid());
    modelsDir_ = dir_->filePath(QStringLiteral("models"));
    control(QStringLiteral("reset=1"));
  }

  void listsTheBundledModelFromItsHeader() {
    app::ModelLibrary lib(modelsDir_, kBundled);
    QCOMPARE(lib.models().size(), 1);
    const app::ModelInfo& m = lib.models()[0];
    QVERIFY2(m.ok(), qPrintable(m.error));
    QVERIFY(m.bundled);
    QCOMPARE(m.architecture, QStringLiteral("llama"));
    QCOMPARE(m.quantisation, QStringLiteral("Q8_0"));
    QCOMPARE(m.contextLength, 512);
    QCOMPARE(m.parameterCount, 3616512);
    QCOMPARE(m.sizeBytes, QFileInfo(kBundled).size());
    QString error;
    QVERIFY(!lib.remove(kBundled, &error));
    QVERIFY(error.contains(QStringLiteral("bundled")));
    QVERIFY(QFile::exists(kBundled));
  }

  void listsCorruptFilesAsErrors() {
    QDir().mkpath(modelsDir_);
    QFile in(kBundled);
    QVERIFY(in.open(QIODevice::ReadOnly));
    QFile truncated(QDir(modelsDir_).filePath(QStringLiteral("truncated.gguf")));
    QVERIFY(truncated.open(QIODevice::WriteOnly));
    truncated.write(in.read(in.size() / 2));
    truncated.close();
    QFile garbage(QDir(modelsDir_).filePath(QStringLiteral("garbage.gguf")));
    QVERIFY(garbage.open(QIODevice::WriteOnly));
    garbage.write("GGUF\x03\0\0\0 then nonsense");
    garbage.close();

    app::ModelLibrary lib(modelsDir_, kBundled);
    QCOMPARE(lib.models().size(), 3);
    for (const QString& name : {QStringLiteral("truncated.gguf"), QStringLiteral("garbage.gguf")}) {
      const app::ModelInfo* m = lib.find(QDir(modelsDir_).filePath(name));
      QVERIFY(m);
      QVERIFY(!m->ok());
      QVERIFY2(m->error.contains(QStringLiteral("Not a usable GGUF model")), qPrintable(m->error));
    }
    // The table shows the error and offers no "Use" for it; a broken file may be deleted.
    app::ModelLibraryCatalog catalog(&lib);
    QCOMPARE(catalog.rowCount(), 3);
    for (int row = 1; row < 3; ++row) {
      QVERIFY(catalog.index(row, 0).data(ui::ModelCatalog::IsErrorRole).toBool());
      const int actions = catalog.index(row, 0).data(ui::ModelCatalog::ActionsRole).toInt();
      QVERIFY(!(actions & ui::ModelCatalog::CanUse));
      QVERIFY(actions & ui::ModelCatalog::CanDelete);
    }
    QCOMPARE(catalog.index(0, ui::ModelCatalog::QuantisationColumn).data().toString(),
             QStringLiteral("Q8_0"));
    QString error;
    QVERIFY(lib.remove(QDir(modelsDir_).filePath(QStringLiteral("garbage.gguf")), &error));
    QCOMPARE(lib.models().size(), 2);
  }

  void listsAModelTheEngineCannotRunAsSuch() {
    // A real GGUF file (llama.cpp's vocabulary-only test file: metadata, no weights).
    QDir().mkpath(modelsDir_);
    const QString vocab = QStringLiteral(
        TIDELANE_SOURCE_DIR "/../shared/fixtures/tokenizers/ggml-vocab-llama-spm.gguf");
    if (!QFile::exists(vocab)) QSKIP("shared/fixtures is not there");
    const QString copy = QDir(modelsDir_).filePath(QStringLiteral("vocab-only.gguf"));
    QVERIFY(QFile::copy(vocab, copy));
    app::ModelLibrary lib(modelsDir_, {});
    const app::ModelInfo* m = lib.find(copy);
    QVERIFY(m);
    QVERIFY2(m->ok(), qPrintable(m->error));
    QCOMPARE(m->architecture, QStringLiteral("llama"));
    QVERIFY(!m->runnable());
    QVERIFY2(m->unsupported.startsWith(QStringLiteral("The bundled engine cannot run it")),
             qPrintable(m->unsupported));
    app::ModelLibraryCatalog catalog(&lib);
    QVERIFY(!(catalog.index(0, 0).data(ui::ModelCatalog::ActionsRole).toInt() &
              ui::ModelCatalog::CanUse));
    QCOMPARE(catalog.index(0, ui::ModelCatalog::StatusColumn).data().toString(), m->unsupported);
  }

  void importsACheckedCopy() {
    app::ModelLibrary lib(modelsDir_, {});
    QString error;
    QVERIFY(!lib.importFile(served_.filePath(QStringLiteral("junk.gguf")), &error));
    QVERIFY2(error.contains(QStringLiteral("cannot be imported")), qPrintable(error));
    QCOMPARE(lib.transfers().size(), 0);

    auto* import = lib.importFile(kBundled, &error);
    QVERIFY2(import, qPrintable(error));
    QSignalSpy done(import, &ModelTransfer::completed);
    QVERIFY(done.wait(30000));
    const QString copy = QDir(modelsDir_).filePath(QStringLiteral("tidelane-guide.gguf"));
    QCOMPARE(done[0][0].toString(), copy);
    QCOMPARE(sha256Of(copy), bundledSha_);
    QCOMPARE(lib.models().size(), 1);
    QVERIFY(lib.models()[0].ok());
    QTRY_COMPARE(lib.transfers().size(), 0);
    QVERIFY(!lib.importFile(kBundled, &error));
    QVERIFY(error.contains(QStringLiteral("already")));
    // Deleting it works (it is not bundled and not in use); the one in use cannot be deleted.
    lib.setActiveModel(copy);
    QVERIFY(!lib.remove(copy, &error));
    lib.setActiveModel({});
    QVERIFY(lib.remove(copy, &error));
    QVERIFY(!QFile::exists(copy));
  }

  void downloadsWithProgressAndVerifiesTheChecksum() {
    app::ModelLibrary lib(modelsDir_, {});
    QString error;
    auto* d =
        lib.download(QUrl(base_ + QStringLiteral("guide.gguf")), bundledSha_.toUpper(), &error);
    QVERIFY2(d, qPrintable(error));
    QSignalSpy progress(d, &ModelTransfer::progress);
    QSignalSpy done(d, &ModelTransfer::completed);
    QVERIFY2(done.wait(30000), qPrintable(d->error()));
    QVERIFY(progress.count() >= 2);
    qint64 last = -1;
    for (const auto& p : progress) {
      QVERIFY(p[0].toLongLong() >= last);  // never goes backwards
      last = p[0].toLongLong();
      QCOMPARE(p[1].toLongLong(), QFileInfo(kBundled).size());
    }
    QCOMPARE(last, QFileInfo(kBundled).size());
    const QString path = QDir(modelsDir_).filePath(QStringLiteral("guide.gguf"));
    QVERIFY(lib.find(path) && lib.find(path)->ok());
    QVERIFY(!QFile::exists(path + QStringLiteral(".part")));
    QVERIFY(!QFile::exists(path + QStringLiteral(".part.json")));
  }

  void pauseThenResumeContinuesFromThePart() {
    control(QStringLiteral("stall_after=1000000"));
    app::ModelLibrary lib(modelsDir_, {});
    QString error;
    auto* d = lib.download(QUrl(base_ + QStringLiteral("guide.gguf")), bundledSha_, &error);
    QVERIFY2(d, qPrintable(error));
    QTRY_COMPARE_WITH_TIMEOUT(d->received(), 1000000, 30000);
    QVERIFY(d->canPause());
    d->pause();
    QCOMPARE(d->state(), State::Paused);
    QCOMPARE(QFileInfo(d->partPath()).size(), 1000000);
    QVERIFY(!lib.find(d->finalPath()));

    QSignalSpy done(d, &ModelTransfer::completed);
    d->resume();
    QVERIFY2(done.wait(30000), qPrintable(d->error()));
    QCOMPARE(sha256Of(done[0][0].toString()), bundledSha_);
    QCOMPARE(lastRange(), QStringLiteral("bytes=1000000-"));
  }

  void resumesAfterARestart() {
    control(QStringLiteral("stall_after=1500000"));
    {
      app::ModelLibrary lib(modelsDir_, {});
      QString error;
      auto* d = lib.download(QUrl(base_ + QStringLiteral("guide.gguf")), bundledSha_, &error);
      QVERIFY2(d, qPrintable(error));
      QTRY_COMPARE_WITH_TIMEOUT(d->received(), 1500000, 30000);
    }  // the app quits mid-download
    app::ModelLibrary lib(modelsDir_, {});
    QCOMPARE(lib.transfers().size(), 1);
    auto* d = qobject_cast<app::ModelDownload*>(lib.transfers()[0]);
    QVERIFY(d);
    QCOMPARE(d->state(), State::Paused);
    QCOMPARE(d->received(), 1500000);
    QCOMPARE(d->total(), QFileInfo(kBundled).size());
    QCOMPARE(d->expectedSha256(), bundledSha_);
    QSignalSpy done(d, &ModelTransfer::completed);
    d->resume();
    // The checksum the download is verified against covers the first run's bytes too.
    QVERIFY2(done.wait(30000), qPrintable(d->error()));
    QCOMPARE(lastRange(), QStringLiteral("bytes=1500000-"));
    QCOMPARE(sha256Of(done[0][0].toString()), bundledSha_);
  }

  void aDroppedConnectionKeepsThePart() {
    control(QStringLiteral("drop_after=700000"));
    app::ModelLibrary lib(modelsDir_, {});
    QString error;
    auto* d = lib.download(QUrl(base_ + QStringLiteral("guide.gguf")), bundledSha_, &error);
    QVERIFY2(d, qPrintable(error));
    QTRY_COMPARE_WITH_TIMEOUT(d->state(), State::Failed, 30000);
    QVERIFY2(d->error().contains(QStringLiteral("Resume continues")), qPrintable(d->error()));
    QVERIFY(d->canResume());
    QCOMPARE(QFileInfo(d->partPath()).size(), 700000);
    QSignalSpy done(d, &ModelTransfer::completed);
    d->resume();
    QVERIFY2(done.wait(30000), qPrintable(d->error()));
    QCOMPARE(lastRange(), QStringLiteral("bytes=700000-"));
    QCOMPARE(sha256Of(done[0][0].toString()), bundledSha_);
  }

  void aServerIgnoringRangeStartsOver() {
    control(QStringLiteral("stall_after=400000"));
    app::ModelLibrary lib(modelsDir_, {});
    QString error;
    auto* d = lib.download(QUrl(base_ + QStringLiteral("guide.gguf")), bundledSha_, &error);
    QVERIFY2(d, qPrintable(error));
    QTRY_COMPARE_WITH_TIMEOUT(d->received(), 400000, 30000);
    d->pause();
    control(QStringLiteral("ignore_range=1"));
    QSignalSpy done(d, &ModelTransfer::completed);
    d->resume();
    QVERIFY2(done.wait(30000), qPrintable(d->error()));
    QCOMPARE(sha256Of(done[0][0].toString()), bundledSha_);
  }

  void aWrongChecksumIsKeptOut() {
    app::ModelLibrary lib(modelsDir_, {});
    QString error;
    auto* d = lib.download(QUrl(base_ + QStringLiteral("guide.gguf")),
                           QString(64, QLatin1Char('0')), &error);
    QVERIFY2(d, qPrintable(error));
    QTRY_COMPARE_WITH_TIMEOUT(d->state(), State::Failed, 30000);
    QVERIFY2(d->error().contains(QStringLiteral("checksum")), qPrintable(d->error()));
    QVERIFY(d->error().contains(bundledSha_));
    QVERIFY(lib.models().isEmpty());
    QVERIFY(!QFile::exists(d->finalPath()));
    QVERIFY(!QFile::exists(d->partPath()));
    // Not a SHA-256 at all: refused before anything starts.
    QVERIFY(
        !lib.download(QUrl(base_ + QStringLiteral("guide.gguf")), QStringLiteral("abc"), &error));
    QVERIFY(error.contains(QStringLiteral("SHA-256")));
  }

  void aFileThatIsNotAModelIsKeptOut() {
    app::ModelLibrary lib(modelsDir_, {});
    QString error;
    auto* d = lib.download(QUrl(base_ + QStringLiteral("junk.gguf")), {}, &error);
    QVERIFY2(d, qPrintable(error));
    QTRY_COMPARE_WITH_TIMEOUT(d->state(), State::Failed, 30000);
    QVERIFY2(d->error().contains(QStringLiteral("not a usable model")), qPrintable(d->error()));
    QVERIFY(lib.models().isEmpty());
    QVERIFY(!QFile::exists(d->partPath()));
  }

  void notEnoughSpaceIsRefusedBeforeWriting() {
    app::ModelLibrary lib(modelsDir_, {});
    lib.setFreeSpaceQuery([](const QString&) { return qint64(50'000'000); });
    QString error;
    auto* d = lib.download(QUrl(base_ + QStringLiteral("guide.gguf")), {}, &error);
    QVERIFY2(d, qPrintable(error));
    QTRY_COMPARE_WITH_TIMEOUT(d->state(), State::Failed, 30000);
    QVERIFY2(d->error().contains(QStringLiteral("Not enough free space")), qPrintable(d->error()));
    QVERIFY(!QFile::exists(d->partPath()));
    QCOMPARE(d->received(), 0);
    // Imports are checked the same way.
    QVERIFY(!lib.importFile(kBundled, &error));
    QVERIFY(error.contains(QStringLiteral("Not enough free space")));
  }

  void cancelRemovesThePart() {
    control(QStringLiteral("stall_after=300000"));
    app::ModelLibrary lib(modelsDir_, {});
    QString error;
    auto* d = lib.download(QUrl(base_ + QStringLiteral("guide.gguf")), {}, &error);
    QVERIFY2(d, qPrintable(error));
    QTRY_COMPARE_WITH_TIMEOUT(d->received(), 300000, 30000);
    const QString part = d->partPath();
    const QString sidecar = d->sidecarPath();
    QVERIFY(QFile::exists(part) && QFile::exists(sidecar));
    d->cancel();
    QVERIFY(!QFile::exists(part));
    QVERIFY(!QFile::exists(sidecar));
    QCOMPARE(lib.transfers().size(), 0);
    QVERIFY(lib.models().isEmpty());
  }

  void unreachableAndMissingGiveClearErrors() {
    app::ModelLibrary lib(modelsDir_, {});
    QString error;
    auto* d = lib.download(QUrl(QStringLiteral("http://127.0.0.1:1/model.gguf")), {}, &error);
    QVERIFY2(d, qPrintable(error));
    QTRY_COMPARE_WITH_TIMEOUT(d->state(), State::Failed, 30000);
    QVERIFY2(d->error().startsWith(QStringLiteral("Cannot reach 127.0.0.1")),
             qPrintable(d->error()));
    auto* missing = lib.download(QUrl(base_ + QStringLiteral("nope.gguf")), {}, &error);
    QVERIFY2(missing, qPrintable(error));
    QTRY_COMPARE_WITH_TIMEOUT(missing->state(), State::Failed, 30000);
    QVERIFY2(missing->error().contains(QStringLiteral("404")), qPrintable(missing->error()));
    QVERIFY(!lib.download(QUrl(QStringLiteral("ftp://example.com/x.gguf")), {}, &error));
    QVERIFY(error.contains(QStringLiteral("http")));
  }

  void huggingFaceBlobLinksBecomeFileLinks() {
    QCOMPARE(
        app::ModelLibrary::normalizeUrl(
            QUrl(QStringLiteral("https://huggingface.co/Org/Repo-GGUF/blob/main/m.Q4_K_M.gguf")))
            .toString(),
        QStringLiteral("https://huggingface.co/Org/Repo-GGUF/resolve/main/m.Q4_K_M.gguf"));
    const QUrl resolve(
        QStringLiteral("https://huggingface.co/Org/Repo/resolve/main/sub/m.gguf?download=true"));
    QCOMPARE(app::ModelLibrary::normalizeUrl(resolve), resolve);
    QCOMPARE(app::ModelLibrary::fileNameFor(resolve), QStringLiteral("m.gguf"));
    QCOMPARE(app::ModelLibrary::fileNameFor(QUrl(QStringLiteral("http://h/dl/model"))),
             QStringLiteral("model.gguf"));
    QCOMPARE(app::ModelLibrary::fileNameFor(QUrl(QStringLiteral("http://h/"))), QString());
  }

  void theDialogFollowsTheSelectedRow() {
    app::ModelLibrary lib(modelsDir_, kBundled);
    app::ModelLibraryCatalog catalog(&lib);
    ui::ModelManagerDialog dialog(&catalog);
    QCOMPARE(dialog.table()->model()->rowCount(), 1);
    for (const char* name : {"useModel", "importModel", "deleteModel", "pauseTransfer",
                             "resumeTransfer", "cancelTransfer", "startDownload", "downloadUrl",
                             "downloadSha256", "modelTable", "modelMessage"}) {
      auto* w = dialog.findChild<QWidget*>(QLatin1String(name));
      QVERIFY2(w, name);
      QVERIFY2(!w->accessibleName().isEmpty(), name);
    }
    auto* use = dialog.findChild<QPushButton*>(QStringLiteral("useModel"));
    auto* del = dialog.findChild<QPushButton*>(QStringLiteral("deleteModel"));
    QVERIFY(use->isEnabled());
    QVERIFY(!del->isEnabled());  // the bundled model
    QSignalSpy chosen(&catalog, &app::ModelLibraryCatalog::modelChosen);
    use->click();
    QCOMPARE(chosen.count(), 1);
    QCOMPARE(chosen[0][0].toString(), QFileInfo(kBundled).absoluteFilePath());
    lib.setActiveModel(kBundled);  // now in use: nothing to do with it
    dialog.table()->selectRow(0);
    QVERIFY(!use->isEnabled());

    // A refused download says why, under the table.
    dialog.findChild<QLineEdit*>(QStringLiteral("downloadUrl"))
        ->setText(QStringLiteral("ftp://x/y"));
    dialog.findChild<QPushButton*>(QStringLiteral("startDownload"))->click();
    auto* message = dialog.findChild<QLabel*>(QStringLiteral("modelMessage"));
    QVERIFY2(message->text().contains(QStringLiteral("http")), qPrintable(message->text()));
    QVERIFY(message->property("isError").toBool());

    // A download shows as a row with progress and can be cancelled from the dialog.
    control(QStringLiteral("stall_after=200000"));
    catalog.download(base_ + QStringLiteral("guide.gguf"), {});
    QCOMPARE(catalog.rowCount(), 2);
    QTRY_COMPARE_WITH_TIMEOUT(catalog.index(1, 0).data(ui::ModelCatalog::ProgressRole).toInt(),
                              static_cast<int>(200000 * 100 / QFileInfo(kBundled).size()), 30000);
    dialog.table()->selectRow(1);
    QVERIFY(dialog.findChild<QPushButton*>(QStringLiteral("pauseTransfer"))->isEnabled());
    if (const QString dir = qEnvironmentVariable("TIDELANE_SCREENSHOT_DIR"); !dir.isEmpty()) {
      dialog.show();
      QVERIFY(QTest::qWaitForWindowExposed(&dialog));
      dialog.grab().save(QDir(dir).filePath(QStringLiteral("model-manager.png")));
    }
    dialog.findChild<QPushButton*>(QStringLiteral("cancelTransfer"))->click();
    QCOMPARE(catalog.rowCount(), 1);
  }

  void theAppOpensTheManagerFromItsMenu() {
    // Settings go to a private place, never the user's.
    QTemporaryDir config;
    qputenv("XDG_CONFIG_HOME", config.path().toUtf8());
    QCoreApplication::setOrganizationName(QStringLiteral("TidelaneTest"));
    QCoreApplication::setApplicationName(QStringLiteral("TidelaneModelTest"));
    QVERIFY(QSettings().fileName().startsWith(config.path()));
    QTemporaryDir data;
    app::AppSettings settings;  // an endpoint that starts no services
    settings.endpoint = app::AppSettings::Endpoint::OpenAiCompatible;
    settings.openAiUrl = QStringLiteral("http://127.0.0.1:9");
    app::AppController controller(settings, QStringLiteral(TIDELANE_BIN_DIR), data.path());
    controller.start();
    auto* action = controller.window()->findChild<QAction*>(QStringLiteral("modelsAction"));
    QVERIFY(action);
    bool seen = false;
    QTimer::singleShot(0, this, [&] {
      auto* dialog = qobject_cast<ui::ModelManagerDialog*>(QApplication::activeModalWidget());
      if (!dialog) return;
      seen = dialog->table()->model()->rowCount() == 1;  // the bundled model
      dialog->table()->selectRow(0);
      dialog->findChild<QPushButton*>(QStringLiteral("useModel"))->click();
      dialog->reject();
    });
    action->trigger();  // modal: returns once the dialog is closed
    QVERIFY(seen);
    const QString bundled = QFileInfo(kBundled).absoluteFilePath();
    QCOMPARE(controller.settings().modelPath, bundled);
    QCOMPARE(app::AppSettings::load().chosenModelPath, bundled);
    QCOMPARE(controller.modelLibrary()->modelsDir(), data.filePath(QStringLiteral("models")));
    QCOMPARE(controller.modelLibrary()->activeModel(), bundled);
  }

  void usingAModelRestartsTheBundledWorkerOnIt() {
    QTemporaryDir data;
    app::ServiceSupervisor::Options options;
    options.binDir = QStringLiteral(TIDELANE_BIN_DIR);
    options.dataDir = data.path();
    app::ServiceSupervisor supervisor(options);  // synthetic engine first
    QSignalSpy ready(&supervisor, &app::ServiceSupervisor::ready);
    QSignalSpy restarted(&supervisor, &app::ServiceSupervisor::childRestarted);
    supervisor.start();
    QVERIFY(ready.wait(30000));
    const qint64 before = supervisor.workerPid();
    const qint64 router = supervisor.routerPid();
    supervisor.setModelPath(kBundled);
    // It returned without waiting for the old worker, which is still exiting (not yet reaped),
    // and the new one starts only once it has gone (both would register as the same node).
    QVERIFY(::kill(static_cast<pid_t>(before), 0) == 0);
    QCOMPARE(supervisor.workerPid(), 0);
    QVERIFY(ready.wait(60000));
    QVERIFY(supervisor.isReady());
    QVERIFY(supervisor.workerPid() != before);
    QVERIFY(::kill(static_cast<pid_t>(before), 0) != 0);  // gone and reaped: nothing left behind
    QCOMPARE(supervisor.routerPid(), router);             // only the worker
    QVERIFY(restarted.isEmpty());                         // a replacement, not a crash
    QFile cmdline(QStringLiteral("/proc/%1/cmdline").arg(supervisor.workerPid()));
    QVERIFY(cmdline.open(QIODevice::ReadOnly));
    const QList<QByteArray> args = cmdline.readAll().split('\0');
    const qsizetype model = args.indexOf("--model");
    QVERIFY(model >= 0);
    QCOMPARE(QString::fromLocal8Bit(args.value(model + 1)), kBundled);
  }

 private:
  QJsonDocument get(const QString& path) {
    QNetworkAccessManager nam;
    QNetworkReply* reply = nam.get(QNetworkRequest(QUrl(base_ + path)));
    QSignalSpy finished(reply, &QNetworkReply::finished);
    if (!finished.wait(10000)) return {};
    reply->deleteLater();
    return QJsonDocument::fromJson(reply->readAll());
  }
  void control(const QString& query) {
    QVERIFY(get(QStringLiteral("__config?") + query).isObject());
  }
  QString lastRange() {
    const QJsonArray all = get(QStringLiteral("__requests")).array();
    return all.isEmpty() ? QString()
                         : all.last().toObject().value(QStringLiteral("range")).toString();
  }

  QTemporaryDir served_;
  QProcess server_;
  QString base_;
  QString bundledSha_;
  std::unique_ptr<QTemporaryDir> dir_;
  QString modelsDir_;
};

QTEST_MAIN(TestModelLibrary)
#include "test_model_library.moc"
