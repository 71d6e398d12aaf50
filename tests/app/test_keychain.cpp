// API keys in the system keychain (app/secret_store.h) and through the app (AppController),
// run twice by CTest:
//  - test_keychain_gnome: under tests/tools/with_keyring.sh (a private D-Bus session with an
//    unlocked gnome-keyring): store, read and delete through QtKeychain, and the app stores
//    the key there and reads it back after a restart;
//  - test_keychain: with DBUS_SESSION_BUS_ADDRESS pointing nowhere, and
//    test_keychain_no_keyring: a D-Bus session whose Secret Service has no keyring: the
//    keychain says there is no keychain (to store into), the app says so and keeps the key
//    for the session only unless the user opts in to the 0600 file.
// Both: the opt-in file is mode 0600, a key left in an old settings file is migrated (or left
// in place without a keychain), and neither the settings file, the data directory nor any log
// line ever holds a key. A remote router's bearer token (a real tidelane-router started here)
// is kept the same way: pasted in the settings, stored in the keychain (or for the session),
// used to connect, read back after a restart; a token file from an older settings file keeps
// working, and choosing the keychain moves its token there.
#include <sys/stat.h>

#include <QCheckBox>
#include <QDirIterator>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QRadioButton>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <optional>

#include "app/app_controller.h"
#include "app/grpc_chat_backend.h"
#include "app/secret_store.h"
#include "app/service_supervisor.h"
#include "tests/app/secret_test_support.h"
#include "ui/main_window.h"
#include "ui/settings_dialog.h"

using namespace tidelane;
using Status = app::SecretResult::Status;
using test::await;

namespace {

bool fileContains(const QString& path, const QString& needle) {
  QFile f(path);
  return f.open(QIODevice::ReadOnly) && f.readAll().contains(needle.toUtf8());
}

// Asks the controller's router one question: "" when answered, else why not.
QString askThrough(app::AppController& controller) {
  if (!QTest::qWaitFor([&] { return controller.backend()->isReady(); }, 15000))
    return QStringLiteral("the backend is not ready");
  QSignalSpy finished(controller.backend(), &ui::ChatBackend::finished);
  QSignalSpy failed(controller.backend(), &ui::ChatBackend::failed);
  controller.backend()->send({{QStringLiteral("user"), QStringLiteral("token?")}}, 4);
  if (!QTest::qWaitFor([&] { return !finished.isEmpty() || !failed.isEmpty(); }, 30000))
    return QStringLiteral("no answer");
  return failed.isEmpty() ? QString() : failed[0][1].toString();
}

void noFileHolds(const QString& dir, const QString& secret) {
  QDirIterator files(dir, QDir::Files, QDirIterator::Subdirectories);
  while (files.hasNext()) {
    const QString f = files.next();
    QVERIFY2(!fileContains(f, secret), qPrintable(f));
  }
}

}  // namespace

class TestKeychain : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    const QByteArray expected = qgetenv("TIDELANE_KEYCHAIN");
    QVERIFY2(expected == "present" || expected == "absent",
             "set TIDELANE_KEYCHAIN to present or absent");
    present_ = expected == "present";
    // Settings go to a private place, never the user's.
    QVERIFY(home_.isValid());
    qputenv("XDG_CONFIG_HOME", home_.filePath(QStringLiteral("config")).toUtf8());
    QCoreApplication::setOrganizationName(QStringLiteral("TidelaneTest"));
    QCoreApplication::setApplicationName(QStringLiteral("TidelaneKeychainTest"));
    QVERIFY(QSettings().fileName().startsWith(home_.path()));
    capture_.emplace();
  }

  void cleanupTestCase() {
    capture_.reset();
    // The whole test's log output: not one line may hold a secret.
    for (const QString& line : std::as_const(test::LogCapture::lines())) {
      for (const QString& secret : secrets_) {
        QVERIFY2(!line.contains(secret), qPrintable(QStringLiteral("a log line holds a secret")));
      }
    }
  }

  void init() {
    QSettings().clear();
    QSettings().sync();
  }

  void keychainStoreReadDelete() {
    app::KeychainSecretStore store;
    const QString key = QStringLiteral("test-key-%1").arg(QCoreApplication::applicationPid());
    const QString secret = remember(QStringLiteral("sk-tïdelane-Ω-12345"));
    const auto written = await([&](auto cb) { store.write(key, secret, cb); });
    if (!present_) {
      QCOMPARE(written.status, Status::NoKeychain);
      QVERIFY2(written.message.startsWith(QStringLiteral("No keychain service is running")),
               qPrintable(written.message));
      return;
    }
    QVERIFY2(written.ok(), qPrintable(written.message));
    const auto read = await([&](auto cb) { store.read(key, cb); });
    QVERIFY2(read.ok(), qPrintable(read.message));
    QCOMPARE(read.secret, secret);
    const auto removed = await([&](auto cb) { store.remove(key, cb); });
    QVERIFY2(removed.ok(), qPrintable(removed.message));
    QCOMPARE(await([&](auto cb) { store.read(key, cb); }).status, Status::NotFound);
    // Removing what is not there is fine.
    QVERIFY(await([&](auto cb) { store.remove(key, cb); }).ok());
  }

  void vaultFallsBackOnlyWithoutKeychain() {
    QTemporaryDir data;
    app::SecretVault vault(std::make_unique<app::KeychainSecretStore>(),
                           data.filePath(QStringLiteral("secrets.json")), false);
    const QString secret = remember(QStringLiteral("sk-vault-67890"));
    const auto written = await([&](auto cb) { vault.write(QStringLiteral("k"), secret, cb); });
    QVERIFY2(written.ok(), qPrintable(written.message));
    if (present_) {
      QCOMPARE(vault.mode(), app::SecretVault::Mode::Keychain);
      QVERIFY(vault.keychainProblem().isEmpty());
      QVERIFY(await([&](auto cb) { vault.remove(QStringLiteral("k"), cb); }).ok());
    } else {
      QCOMPARE(vault.mode(), app::SecretVault::Mode::SessionOnly);
      QVERIFY(vault.describe().contains(QStringLiteral("No keychain service is running")));
      QVERIFY(vault.describe().contains(QStringLiteral("this session only")));
      const auto read = await([&](auto cb) { vault.read(QStringLiteral("k"), cb); });
      QVERIFY(read.ok());
      QCOMPARE(read.secret, secret);
    }
    // Never a file behind the user's back.
    QVERIFY(!QFile::exists(data.filePath(QStringLiteral("secrets.json"))));
  }

  void theOptInFileIsOwnerOnly() {
    QTemporaryDir data;
    const QString path = data.filePath(QStringLiteral("secrets.json"));
    app::SecretVault vault(std::make_unique<app::KeychainSecretStore>(), path, true);
    QCOMPARE(vault.mode(), app::SecretVault::Mode::File);
    QVERIFY(vault.describe().contains(QStringLiteral("readable only by you")));
    const QString secret = remember(QStringLiteral("sk-file-24680"));
    QVERIFY(await([&](auto cb) { vault.write(QStringLiteral("k"), secret, cb); }).ok());
    struct stat st {};
    QCOMPARE(::stat(QFile::encodeName(path).constData(), &st), 0);
    QCOMPARE(st.st_mode & 0777, 0600u);
    app::FileSecretStore again(path);
    const auto read = await([&](auto cb) { again.read(QStringLiteral("k"), cb); });
    QVERIFY(read.ok());
    QCOMPARE(read.secret, secret);
    // Going back to the keychain deletes the file.
    vault.setUseFile(false);
    QVERIFY(!QFile::exists(path));
  }

  void theAppKeepsTheKeyOutOfSettingsAndLogs() {
    QTemporaryDir data;
    const QString secret = remember(QStringLiteral("sk-app-secret-13579"));
    app::AppSettings settings;
    settings.endpoint = app::AppSettings::Endpoint::OpenAiCompatible;
    settings.openAiUrl = QStringLiteral("http://127.0.0.1:9");
    {
      app::AppController controller(settings, QStringLiteral(TIDELANE_BIN_DIR), data.path());
      QSignalSpy loaded(&controller, &app::AppController::apiKeyLoaded);
      controller.start();
      QVERIFY(loaded.wait(30000));
      QCOMPARE(loaded[0][0].toBool(), false);  // nothing stored yet
      QSignalSpy stored(&controller, &app::AppController::apiKeyStored);
      controller.applySettings(settings, secret, true);
      QVERIFY(stored.wait(30000));
      QVERIFY2(stored[0][0].toBool(), qPrintable(stored[0][1].toString()));
      const QString message = stored[0][1].toString();
      QVERIFY2(message.contains(present_ ? QStringLiteral("stored in the system keychain")
                                         : QStringLiteral("this session only")),
               qPrintable(message));
      // The window says it too.
      auto* status = controller.window()->findChild<QLabel*>(QStringLiteral("serviceStatus"));
      QVERIFY(status);
      QCOMPARE(status->text(), message);
      QCOMPARE(controller.apiKey(), secret);
    }
    QSettings().sync();
    const QString settingsFile = QSettings().fileName();
    QVERIFY(QFile::exists(settingsFile));
    QVERIFY(fileContains(settingsFile, QStringLiteral("127.0.0.1:9")));  // the file was written
    QVERIFY(!fileContains(settingsFile, secret));
    QDirIterator files(data.path(), QDir::Files, QDirIterator::Subdirectories);
    while (files.hasNext()) {
      const QString f = files.next();
      QVERIFY2(!fileContains(f, secret), qPrintable(f));
    }

    // Restart: the key comes back from the keychain; without one it was for that session only.
    app::AppController controller(app::AppSettings::load(), QStringLiteral(TIDELANE_BIN_DIR),
                                  data.path());
    QSignalSpy loaded(&controller, &app::AppController::apiKeyLoaded);
    controller.start();
    QVERIFY(loaded.wait(30000));
    if (present_) {
      QVERIFY2(loaded[0][0].toBool(), qPrintable(loaded[0][1].toString()));
      QCOMPARE(controller.apiKey(), secret);
      // Clearing the key removes it from the keychain.
      QSignalSpy stored(&controller, &app::AppController::apiKeyStored);
      controller.applySettings(controller.settings(), QString(), true);
      QVERIFY(stored.wait(30000));
      QVERIFY(stored[0][1].toString().contains(QStringLiteral("removed")));
    } else {
      QCOMPARE(loaded[0][0].toBool(), false);
      QVERIFY(controller.apiKey().isEmpty());
      // Without a D-Bus session even a read says there is no keychain; a Secret Service with no
      // keyring just has nothing stored (only storing fails).
      const QString message = loaded[0][1].toString();
      QVERIFY2(message.isEmpty() || message.contains(QStringLiteral("this session only")),
               qPrintable(message));
    }
  }

  void theSettingsDialogOffersTheFileOnlyWithoutKeychain() {
    QTemporaryDir data;
    app::AppSettings settings;
    settings.endpoint = app::AppSettings::Endpoint::OpenAiCompatible;
    settings.openAiUrl = QStringLiteral("http://127.0.0.1:9");
    app::AppController controller(settings, QStringLiteral(TIDELANE_BIN_DIR), data.path());
    QSignalSpy loaded(&controller, &app::AppController::apiKeyLoaded);
    controller.start();
    QVERIFY(loaded.wait(30000));
    if (!present_ && !controller.endpointSettings().keychainMissing) {
      // A Secret Service with no keyring answers reads ("nothing stored"); the first key the
      // user enters shows there is nowhere to keep it.
      QSignalSpy stored(&controller, &app::AppController::apiKeyStored);
      controller.applySettings(controller.settings(), remember(QStringLiteral("sk-probe-11111")),
                               true);
      QVERIFY(stored.wait(30000));
    }
    ui::EndpointSettings current = controller.endpointSettings();
    QCOMPARE(current.keychainMissing, !present_);
    {
      ui::SettingsDialog dialog(current);
      auto* box = dialog.findChild<QCheckBox*>(QStringLiteral("storeKeyInFile"));
      auto* note = dialog.findChild<QLabel*>(QStringLiteral("apiKeyNote"));
      QVERIFY(box && note);
      QCOMPARE(box->isHidden(), present_);
      QVERIFY(!box->isChecked());  // never chosen for the user
      QVERIFY(!box->accessibleName().isEmpty());
      QVERIFY2(note->text().contains(present_ ? QStringLiteral("system keychain")
                                              : QStringLiteral("this session only")),
               qPrintable(note->text()));
      QVERIFY(!dialog.values().storeKeyInFile);
    }
    if (present_) return;

    // The user opts in: the key goes to the 0600 file and survives a restart.
    const QString secret = remember(QStringLiteral("sk-optin-86420"));
    current.apiKey = secret;
    current.storeKeyInFile = true;
    QSignalSpy stored(&controller, &app::AppController::apiKeyStored);
    controller.applyEndpointSettings(current);
    QVERIFY(stored.wait(30000));
    QVERIFY2(stored[0][0].toBool(), qPrintable(stored[0][1].toString()));
    const QString file = data.filePath(QStringLiteral("secrets.json"));
    QVERIFY2(stored[0][1].toString().contains(file), qPrintable(stored[0][1].toString()));
    QVERIFY(fileContains(file, secret));
    QSettings().sync();
    QVERIFY(QSettings().value(QStringLiteral("secrets/storeInFile")).toBool());
    QVERIFY(!fileContains(QSettings().fileName(), secret));
    {
      app::AppController again(app::AppSettings::load(), QStringLiteral(TIDELANE_BIN_DIR),
                               data.path());
      QSignalSpy reloaded(&again, &app::AppController::apiKeyLoaded);
      again.start();
      QVERIFY(reloaded.wait(30000));
      QCOMPARE(again.apiKey(), secret);
    }
    // And opts out again: the file is gone.
    current = controller.endpointSettings();
    current.storeKeyInFile = false;
    stored.clear();
    controller.applyEndpointSettings(current);
    QVERIFY(stored.wait(30000));
    QVERIFY(!QFile::exists(file));
    QVERIFY(!QSettings().value(QStringLiteral("secrets/storeInFile")).toBool());
  }

  void theRouterTokenIsKeptLikeTheKey() {
    RemoteRouter router;
    QVERIFY(router.start());
    const QString token = remember(router.token());
    QTemporaryDir data;
    app::AppSettings settings;
    settings.endpoint = app::AppSettings::Endpoint::RemoteRouter;
    settings.remoteAddress = router.address();
    {
      app::AppController controller(settings, QStringLiteral(TIDELANE_BIN_DIR), data.path());
      QSignalSpy loaded(&controller, &app::AppController::remoteTokenLoaded);
      controller.start();
      QVERIFY(loaded.wait(30000));
      QCOMPARE(loaded[0][0].toBool(), false);  // nothing stored yet: the user is asked for it
      auto* status = controller.window()->findChild<QLabel*>(QStringLiteral("serviceStatus"));
      QVERIFY(status);
      // Without a D-Bus session even the read says there is no keychain; a Secret Service with
      // no keyring just has nothing stored.
      QVERIFY2(status->text().contains(QStringLiteral("paste it")) ||
                   (!present_ && status->text().contains(QStringLiteral("No keychain service"))),
               qPrintable(status->text()));

      // The dialog: a masked, labelled field, the keychain chosen by default, the file option.
      ui::EndpointSettings current = controller.endpointSettings();
      QVERIFY(!current.remoteTokenFromFile);
      {
        ui::SettingsDialog dialog(current);
        auto* field = dialog.findChild<QLineEdit*>(QStringLiteral("remoteToken"));
        auto* inKeychain = dialog.findChild<QRadioButton*>(QStringLiteral("remoteTokenInKeychain"));
        auto* fromFile = dialog.findChild<QRadioButton*>(QStringLiteral("remoteTokenFromFile"));
        auto* note = dialog.findChild<QLabel*>(QStringLiteral("remoteTokenNote"));
        QVERIFY(field && inKeychain && fromFile && note);
        QCOMPARE(field->echoMode(), QLineEdit::Password);
        QVERIFY(!field->accessibleName().isEmpty() && !fromFile->accessibleName().isEmpty() &&
                !inKeychain->accessibleName().isEmpty());
        QVERIFY(inKeychain->isChecked());
        QVERIFY(field->isEnabled());
        QVERIFY(!dialog.findChild<QLineEdit*>(QStringLiteral("remoteTokenFile"))->isEnabled());
        field->setText(token);
        QCOMPARE(dialog.values().remoteToken, token);
        QVERIFY(!dialog.values().remoteTokenFromFile);
        current = dialog.values();
      }
      QSignalSpy stored(&controller, &app::AppController::remoteTokenStored);
      controller.applyEndpointSettings(current);
      QVERIFY(stored.wait(30000));
      QVERIFY2(stored[0][0].toBool(), qPrintable(stored[0][1].toString()));
      QVERIFY2(stored[0][1].toString().contains(
                   present_ ? QStringLiteral("stored in the system keychain")
                            : QStringLiteral("this session only")),
               qPrintable(stored[0][1].toString()));
      QCOMPARE(controller.remoteToken(), token);
      const QString answered = askThrough(controller);  // the pasted token opens the router
      QVERIFY2(answered.isEmpty(), qPrintable(answered));
    }
    QSettings().sync();
    QVERIFY(fileContains(QSettings().fileName(), router.address()));
    QVERIFY(!fileContains(QSettings().fileName(), token));
    QCOMPARE(QSettings().value(QStringLiteral("endpoint/remoteTokenSource")).toString(),
             QStringLiteral("keychain"));
    noFileHolds(data.path(), token);

    // Restart: the token comes back from the keychain (without one it was for that session).
    app::AppController controller(app::AppSettings::load(), QStringLiteral(TIDELANE_BIN_DIR),
                                  data.path());
    QSignalSpy loaded(&controller, &app::AppController::remoteTokenLoaded);
    controller.start();
    QVERIFY(loaded.wait(30000));
    if (present_) {
      QVERIFY2(loaded[0][0].toBool(), qPrintable(loaded[0][1].toString()));
      const QString answered = askThrough(controller);
      QVERIFY2(answered.isEmpty(), qPrintable(answered));
      // Clearing the field removes it from the keychain.
      ui::EndpointSettings cleared = controller.endpointSettings();
      QCOMPARE(cleared.remoteToken, token);
      cleared.remoteToken.clear();
      QSignalSpy stored(&controller, &app::AppController::remoteTokenStored);
      controller.applyEndpointSettings(cleared);
      QVERIFY(stored.wait(30000));
      QVERIFY2(stored[0][1].toString().contains(QStringLiteral("removed")),
               qPrintable(stored[0][1].toString()));
    } else {
      QCOMPARE(loaded[0][0].toBool(), false);
      QVERIFY(controller.remoteToken().isEmpty());
    }
  }

  void anOldTokenFileKeepsWorkingAndMovesToTheKeychainOnRequest() {
    RemoteRouter router;
    QVERIFY(router.start());
    const QString token = remember(router.token());
    QTemporaryDir data;
    const QString tokenFile = data.filePath(QStringLiteral("provisioned-token"));
    {
      QFile f(tokenFile);
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write(token.toUtf8() + '\n');
    }
    {
      // What an older version wrote: the file, and no token source.
      QSettings s;
      s.setValue(QStringLiteral("endpoint/kind"), QStringLiteral("remote"));
      s.setValue(QStringLiteral("endpoint/remoteAddress"), router.address());
      s.setValue(QStringLiteral("endpoint/remoteTokenFile"), tokenFile);
    }
    const app::AppSettings loadedSettings = app::AppSettings::load();
    QVERIFY(loadedSettings.remoteTokenFromFile);
    app::AppController controller(loadedSettings, QStringLiteral(TIDELANE_BIN_DIR), data.path());
    controller.start();
    QString answered = askThrough(controller);  // still read from the file
    QVERIFY2(answered.isEmpty(), qPrintable(answered));
    ui::EndpointSettings current = controller.endpointSettings();
    QVERIFY(current.remoteTokenFromFile);
    QCOMPARE(current.remoteTokenFile, tokenFile);
    QVERIFY(current.remoteToken.isEmpty());

    // The user picks the keychain without pasting anything: the file's token moves there.
    current.remoteTokenFromFile = false;
    QSignalSpy stored(&controller, &app::AppController::remoteTokenStored);
    controller.applyEndpointSettings(current);
    QVERIFY(stored.wait(30000));
    QVERIFY2(stored[0][0].toBool(), qPrintable(stored[0][1].toString()));
    QCOMPARE(controller.remoteToken(), token);
    answered = askThrough(controller);
    QVERIFY2(answered.isEmpty(), qPrintable(answered));
    QVERIFY(QFile::exists(tokenFile));  // a provisioned file is not the app's to delete
    QSettings().sync();
    QVERIFY(!fileContains(QSettings().fileName(), token));
    if (present_) {
      app::KeychainSecretStore store;
      const auto read =
          await([&](auto cb) { store.read(app::AppController::remoteTokenName(), cb); });
      QCOMPARE(read.secret, token);
      QVERIFY(
          await([&](auto cb) { store.remove(app::AppController::remoteTokenName(), cb); }).ok());
    }
  }

  void aKeyInAnOldSettingsFileIsMigrated() {
    const QString secret = remember(QStringLiteral("sk-legacy-97531"));
    {
      QSettings s;
      s.setValue(QStringLiteral("endpoint/kind"), QStringLiteral("openai"));
      s.setValue(QStringLiteral("endpoint/openAiUrl"), QStringLiteral("http://127.0.0.1:9"));
      s.setValue(QStringLiteral("endpoint/apiKey"), secret);
    }
    QTemporaryDir data;
    app::AppController controller(app::AppSettings::load(), QStringLiteral(TIDELANE_BIN_DIR),
                                  data.path());
    QSignalSpy loaded(&controller, &app::AppController::apiKeyLoaded);
    controller.start();
    QVERIFY(loaded.wait(30000));
    QCOMPARE(controller.apiKey(), secret);  // nothing lost either way
    QSettings().sync();
    if (present_) {
      QVERIFY(!QSettings().contains(QStringLiteral("endpoint/apiKey")));
      QVERIFY(!fileContains(QSettings().fileName(), secret));
      app::KeychainSecretStore store;
      const auto read = await([&](auto cb) { store.read(app::AppController::apiKeyName(), cb); });
      QCOMPARE(read.secret, secret);
      QVERIFY(await([&](auto cb) { store.remove(app::AppController::apiKeyName(), cb); }).ok());
    } else {
      // No keychain to move it to: it stays where the old version put it, and the user is told.
      QVERIFY(QSettings().contains(QStringLiteral("endpoint/apiKey")));
      auto* status = controller.window()->findChild<QLabel*>(QStringLiteral("serviceStatus"));
      QVERIFY(status->text().contains(QStringLiteral("No keychain service")));
      QSettings().remove(QStringLiteral("endpoint/apiKey"));
    }
  }

 private:
  std::optional<test::LogCapture> capture_;  // from initTestCase to cleanupTestCase
  // A real tidelane-router (and a synthetic worker) on loopback, playing the remote router.
  class RemoteRouter {
   public:
    bool start() {
      app::ServiceSupervisor::Options o;
      o.binDir = QStringLiteral(TIDELANE_BIN_DIR);
      o.dataDir = dir_.path();
      services_ = std::make_unique<app::ServiceSupervisor>(o);
      QSignalSpy ready(services_.get(), &app::ServiceSupervisor::ready);
      services_->start();
      return ready.wait(30000);
    }
    QString address() const { return services_->grpcAddress(); }
    QString token() const { return services_->token(); }

   private:
    QTemporaryDir dir_;
    std::unique_ptr<app::ServiceSupervisor> services_;
  };

  QString remember(const QString& secret) {
    secrets_ << secret;
    return secret;
  }

  bool present_ = false;
  QTemporaryDir home_;
  QStringList secrets_;
};

QTEST_MAIN(TestKeychain)
#include "test_keychain.moc"
