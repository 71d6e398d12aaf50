// tidelane: the desktop chat app. Starts the bundled router and worker (or connects to a
// remote router, from the settings or the command line) and opens the chat window, or the
// monitor with --monitor.
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QFileInfo>
#include <QStandardPaths>

#include "app/app_controller.h"
#include "app/app_settings.h"
#include "app/bundled_model.h"
#include "app/demo_controller.h"
#include "app/startup_probe.h"
#include "ui/main_window.h"
#include "ui/theme.h"

int main(int argc, char** argv) {
  // First thing: the cold-start benchmark counts QApplication's own start too.
  const qint64 mainUs = tidelane::app::StartupProbe::nowUs();
  QApplication qapp(argc, argv);
  QApplication::setOrganizationName(QStringLiteral("Tidelane"));
  QApplication::setApplicationName(QStringLiteral("Tidelane"));
  QApplication::setApplicationVersion(QStringLiteral(TIDELANE_VERSION));

  QCommandLineParser cli;
  cli.setApplicationDescription(QApplication::translate(
      "main", "Chat with a bundled local model, a Tidelane router or any compatible endpoint."));
  cli.addHelpOption();
  cli.addVersionOption();
  const QCommandLineOption remote(
      QStringLiteral("remote"),
      QApplication::translate("main", "Use the remote router at HOST:PORT."),
      QStringLiteral("HOST:PORT"));
  const QCommandLineOption tokenFile(
      QStringLiteral("token-file"),
      QApplication::translate("main",
                              "File with the remote router's bearer token (default: the token "
                              "kept in the keychain, pasted in File → Settings)."),
      QStringLiteral("PATH"));
  const QCommandLineOption tlsCa(
      QStringLiteral("tls-ca"),
      QApplication::translate("main", "PEM CA the remote router's TLS certificate chains to."),
      QStringLiteral("PATH"));
  const QCommandLineOption dataDir(
      QStringLiteral("data-dir"),
      QApplication::translate("main", "Directory for the bundled router's state and logs."),
      QStringLiteral("DIR"));
  const QCommandLineOption profile(
      QStringLiteral("worker-profile"),
      QApplication::translate("main",
                              "Speed class the bundled synthetic worker models: high, mid, low."),
      QStringLiteral("PROFILE"));
  const QCommandLineOption history(
      QStringLiteral("history-db"),
      QApplication::translate("main", "Chat history file (default: DIR/history.sqlite)."),
      QStringLiteral("PATH"));
  const QCommandLineOption send(
      QStringLiteral("send"),
      QApplication::translate("main", "Send MESSAGE in a new chat as soon as the model is ready."),
      QStringLiteral("MESSAGE"));
  const QCommandLineOption model(
      QStringLiteral("model"),
      QApplication::translate("main",
                              "GGUF model the bundled worker runs (default: the bundled model)."),
      QStringLiteral("PATH"));
  const QCommandLineOption synthetic(
      QStringLiteral("synthetic"),
      QApplication::translate("main", "Run the bundled worker's synthetic engine, not a model."));
  const QCommandLineOption monitor(
      QStringLiteral("monitor"),
      QApplication::translate("main", "Open straight into the live tidal-lane monitor."));
  const QCommandLineOption demo(
      QStringLiteral("demo"),
      QApplication::translate("main",
                              "Open straight into the surge demo: naive vs tidal routers."));
  const QCommandLineOption presenter(
      QStringLiteral("presenter"),
      QApplication::translate("main", "Open the surge demo in presenter mode (full screen)."));
  cli.addOptions({remote, tokenFile, dataDir, profile, history, send, model, synthetic, monitor});
  cli.addOptions({demo, presenter, tlsCa});
  cli.process(qapp);

  auto settings = tidelane::app::AppSettings::load();
  // Light, dark or the desktop's (Settings → Appearance; the first paint already uses it).
  tidelane::ui::applyTheme(tidelane::ui::themeFromName(settings.theme));
  if (cli.isSet(remote)) {
    settings.endpoint = tidelane::app::AppSettings::Endpoint::RemoteRouter;
    settings.remoteAddress = cli.value(remote);
    // Without --token-file, the token the keychain holds (pasted in the settings).
    settings.remoteTokenFromFile = cli.isSet(tokenFile);
    if (cli.isSet(tokenFile)) settings.remoteTokenFile = cli.value(tokenFile);
    settings.remoteCaFile = cli.value(tlsCa);
  }
  if (cli.isSet(profile)) settings.workerProfile = cli.value(profile);
  // The bundled worker runs a real model unless told to imitate one (--synthetic, or a speed
  // class for the synthetic engine): --model, else the bundled default when it is installed.
  if (cli.isSet(model)) {
    settings.modelPath = cli.value(model);
  } else if (!cli.isSet(synthetic) && !cli.isSet(profile)) {
    // The model chosen in the model manager while it is still there, else the bundled one.
    const QString appDir = QCoreApplication::applicationDirPath();
    settings.modelPath = QFileInfo::exists(settings.chosenModelPath)
                             ? settings.chosenModelPath
                             : tidelane::app::BundledModelPath(appDir);
  }
  const QString data = cli.isSet(dataDir)
                           ? cli.value(dataDir)
                           : QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);

  if (cli.isSet(demo) || cli.isSet(presenter)) {
    return tidelane::app::RunDemoWindow(QCoreApplication::applicationDirPath(), data,
                                        cli.isSet(presenter));
  }
  tidelane::app::AppController controller(settings, QCoreApplication::applicationDirPath(), data,
                                          cli.value(history));
  // Only with TIDELANE_STARTUP_PROBE set (scripts/bench-app): start-up milestones on stderr.
  tidelane::app::StartupProbe::install(mainUs, controller.window(), controller.activeBackend());
  controller.start(cli.isSet(monitor) ? tidelane::app::AppController::StartView::Monitor
                                      : tidelane::app::AppController::StartView::Chat);
  if (cli.isSet(send)) controller.sendWhenReady(cli.value(send));
  return QApplication::exec();
}
