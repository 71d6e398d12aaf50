// The bundled worker's signing key (issue 9, app/worker_identity.h), with real processes: the
// app starts the bundled router and worker and an answer's receipt names the key that signed it.
// Run twice by CTest:
//  - test_worker_identity_gnome: under tests/tools/with_keyring.sh (a private D-Bus session with
//    an unlocked gnome-keyring): the key is created in the keychain and reaches the worker over
//    its stdin (--identity-stdin); receipts carry the same public key across app restarts; no
//    key file is left on disk; a key file an older version left is moved into the keychain and
//    removed;
//  - test_worker_identity: with DBUS_SESSION_BUS_ADDRESS pointing nowhere: the worker keeps its
//    key in its 0600 file as before, the same across restarts, and the log says so.
// Both: no log line holds the key.
#include <sys/stat.h>

#include <QElapsedTimer>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSettings>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <optional>

#include "app/app_controller.h"
#include "app/grpc_chat_backend.h"
#include "app/secret_store.h"
#include "app/service_supervisor.h"
#include "app/worker_identity.h"
#include "router/receipt/receipt.h"
#include "tests/app/secret_test_support.h"

using namespace tidelane;
using Status = app::SecretResult::Status;
using test::await;

namespace {

// A keychain that never answers (a prompt nobody sees).
class SilentStore : public app::SecretStore {
 public:
  QString describe() const override { return QStringLiteral("a silent keychain"); }
  void write(const QString&, const QString&, Callback) override {}
  void read(const QString&, Callback) override {}
  void remove(const QString&, Callback) override {}
};

QByteArray commandLine(qint64 pid) {
  QFile f(QStringLiteral("/proc/%1/cmdline").arg(pid));
  return f.open(QIODevice::ReadOnly) ? f.readAll().replace('\0', ' ') : QByteArray();
}

}  // namespace

class TestWorkerIdentity : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    const QByteArray expected = qgetenv("TIDELANE_KEYCHAIN");
    QVERIFY2(expected == "present" || expected == "absent",
             "set TIDELANE_KEYCHAIN to present or absent");
    present_ = expected == "present";
    QVERIFY(home_.isValid());
    // Settings and the worker's key file go to a private place, never the user's; the worker
    // child inherits XDG_STATE_HOME.
    qputenv("XDG_CONFIG_HOME", home_.filePath(QStringLiteral("config")).toUtf8());
    qputenv("XDG_STATE_HOME", home_.filePath(QStringLiteral("state")).toUtf8());
    QCoreApplication::setOrganizationName(QStringLiteral("TidelaneTest"));
    QCoreApplication::setApplicationName(QStringLiteral("TidelaneWorkerIdentityTest"));
    keyFile_ = app::WorkerIdentity::defaultFile();
    QCOMPARE(keyFile_, home_.filePath(QStringLiteral("state/tidelane/worker.key")));
    capture_.emplace();
  }

  void cleanupTestCase() {
    capture_.reset();
    for (const QString& line : std::as_const(test::LogCapture::lines())) {
      for (const QString& secret : std::as_const(secrets_)) {
        QVERIFY2(!line.contains(secret), "a log line holds the worker's key");
      }
    }
  }

  void init() {
    QSettings().clear();
    QSettings().sync();
    QFile::remove(keyFile_);
    if (present_) {
      app::KeychainSecretStore store;
      QVERIFY(await([&](auto cb) { store.remove(app::WorkerIdentity::keyName(), cb); }).ok());
    }
  }

  void theKeyIsTheSameAcrossRestarts() {
    const Run first = runApp();
    QVERIFY2(!first.publicKey.isEmpty(), qPrintable(first.error));
    const Run second = runApp();
    QVERIFY2(!second.publicKey.isEmpty(), qPrintable(second.error));
    QCOMPARE(second.publicKey, first.publicKey);
    if (present_) {
      // The key reached the worker over its stdin and lives in the keychain only.
      QVERIFY2(first.commandLine.contains("--identity-stdin"), first.commandLine.constData());
      QVERIFY(!QFile::exists(keyFile_));
      QCOMPARE(keychainPublicKey(), first.publicKey);
      QVERIFY(logSays(QStringLiteral("was created in the system keychain")));
      QVERIFY(logSays(QStringLiteral("came from the system keychain")));
    } else {
      // No keychain: the worker's 0600 file, as before, and the log says so.
      QVERIFY2(first.commandLine.contains("--identity-file"), first.commandLine.constData());
      QVERIFY(!first.commandLine.contains("--identity-stdin"));
      QVERIFY(QFile::exists(keyFile_));
      QCOMPARE(modeOf(keyFile_), 0600u);
      QCOMPARE(filePublicKey(), first.publicKey);
      QVERIFY(logSays(QStringLiteral("keeps its signing key in")));
    }
  }

  void anOldKeyFileMovesIntoTheKeychain() {
    // What an older version left: the worker's own key file.
    const auto old = receipt::LoadOrCreateIdentity(keyFile_.toStdString());
    secrets_ << QString::fromStdString(old.Serialize()).trimmed().section(QLatin1Char(' '), 1);
    const QString oldKey = QString::fromStdString(old.PublicKeyHex());
    const Run run = runApp();
    QVERIFY2(!run.publicKey.isEmpty(), qPrintable(run.error));
    QCOMPARE(run.publicKey, oldKey);  // the same identity either way
    if (present_) {
      QVERIFY(!QFile::exists(keyFile_));  // removed once the keychain held it
      QCOMPARE(keychainPublicKey(), oldKey);
      QVERIFY(logSays(QStringLiteral("was moved from")));
    } else {
      QVERIFY(QFile::exists(keyFile_));  // nowhere else to keep it
    }
  }

  // However long the keychain takes, the worker waits only WorkerIdentity::kKeychainWaitMs: it
  // then starts on its file, and the log will say why.
  void aSilentKeychainDoesNotHoldTheWorker() {
    QTemporaryDir dir;
    app::SecretVault vault(std::make_unique<SilentStore>(),
                           dir.filePath(QStringLiteral("secrets.json")), false);
    app::WorkerIdentity identity(&vault, dir.filePath(QStringLiteral("worker.key")));
    std::optional<app::WorkerIdentity::Outcome> got;
    identity.resolve([&](const app::WorkerIdentity::Outcome& o) { got = o; });
    QTRY_VERIFY_WITH_TIMEOUT(got.has_value(), 30000);
    QVERIFY(got->identity.isEmpty());
    QCOMPARE(got->file, dir.filePath(QStringLiteral("worker.key")));
    QVERIFY2(got->message.contains(QStringLiteral("did not answer")), qPrintable(got->message));
  }

 private:
  std::optional<test::LogCapture> capture_;  // from initTestCase to cleanupTestCase
  struct Run {
    QString publicKey;  // of the worker that signed the answer's receipt
    QByteArray commandLine;
    QString error;
  };

  // Starts the app on the bundled services, asks one question, and returns who signed it.
  Run runApp() {
    Run out;
    QTemporaryDir data;
    app::AppController controller(app::AppSettings::load(), QStringLiteral(TIDELANE_BIN_DIR),
                                  data.path());
    QElapsedTimer clock;
    clock.start();
    controller.start();
    if (!QTest::qWaitFor([&] { return controller.backend()->isReady(); }, 30000) ||
        !controller.supervisor() ||
        !QTest::qWaitFor([&] { return controller.supervisor()->isReady(); }, 30000)) {
      out.error = QStringLiteral("the bundled services did not start");
      return out;
    }
    qInfo("bundled services ready %lld ms after start", static_cast<long long>(clock.elapsed()));
    out.commandLine = commandLine(controller.supervisor()->workerPid());
    QSignalSpy finished(controller.backend(), &ui::ChatBackend::finished);
    QSignalSpy failed(controller.backend(), &ui::ChatBackend::failed);
    controller.backend()->send({{QStringLiteral("user"), QStringLiteral("Who signs this?")}}, 8);
    if (!QTest::qWaitFor([&] { return !finished.isEmpty() || !failed.isEmpty(); }, 30000)) {
      out.error = QStringLiteral("no answer");
      return out;
    }
    if (!failed.isEmpty()) {
      out.error = failed[0][1].toString();
      return out;
    }
    const QString receipt = finished[0][1].value<ui::AnswerSummary>().receiptJson;
    out.publicKey = QJsonDocument::fromJson(receipt.toUtf8())
                        .object()
                        .value(QStringLiteral("worker_public_key"))
                        .toString();
    if (out.publicKey.isEmpty()) out.error = QStringLiteral("no receipt: ") + receipt.left(200);
    return out;
  }

  QString keychainPublicKey() {
    app::KeychainSecretStore store;
    const auto r = await([&](auto cb) { store.read(app::WorkerIdentity::keyName(), cb); });
    if (!r.ok()) return r.message;
    secrets_ << r.secret.trimmed().section(QLatin1Char(' '), 1);  // the seed's hex
    return QString::fromStdString(
        receipt::ParseIdentity(r.secret.toStdString(), "keychain").PublicKeyHex());
  }

  QString filePublicKey() {
    const auto id = receipt::LoadIdentityFile(keyFile_.toStdString());
    secrets_ << QString::fromStdString(id.Serialize()).trimmed().section(QLatin1Char(' '), 1);
    return QString::fromStdString(id.PublicKeyHex());
  }

  static unsigned modeOf(const QString& path) {
    struct stat st {};
    return ::stat(QFile::encodeName(path).constData(), &st) == 0 ? (st.st_mode & 0777) : 0;
  }

  static bool logSays(const QString& text) {
    for (const QString& line : std::as_const(test::LogCapture::lines())) {
      if (line.contains(text)) return true;
    }
    return false;
  }

  bool present_ = false;
  QTemporaryDir home_;
  QString keyFile_;
  QStringList secrets_;
};

QTEST_MAIN(TestWorkerIdentity)
#include "test_worker_identity.moc"
