// tidelane: the desktop chat app. Starts the bundled router and worker (or connects to a
// remote router, from the settings or the command line) and opens the chat window, or the
// monitor with --monitor.
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QStandardPaths>

#include "app/app_controller.h"
#include "app/app_settings.h"
#include "app/bundled_model.h"

int main(int argc, char** argv) {
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
      QApplication::translate("main", "File with the remote router's bearer token."),
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
  cli.addOptions({remote, tokenFile, dataDir, profile, history, send, model, synthetic, monitor});
  cli.process(qapp);

  auto settings = tidelane::app::AppSettings::load();
  if (cli.isSet(remote)) {
    settings.endpoint = tidelane::app::AppSettings::Endpoint::RemoteRouter;
    settings.remoteAddress = cli.value(remote);
    settings.remoteTokenFile = cli.value(tokenFile);
  }
  if (cli.isSet(profile)) settings.workerProfile = cli.value(profile);
  // The bundled worker runs a real model unless told to imitate one (--synthetic, or a speed
  // class for the synthetic engine): --model, else the bundled default when it is installed.
  if (cli.isSet(model)) {
    settings.modelPath = cli.value(model);
  } else if (!cli.isSet(synthetic) && !cli.isSet(profile)) {
    settings.modelPath = tidelane::app::BundledModelPath(QCoreApplication::applicationDirPath());
  }
  const QString data = cli.isSet(dataDir)
                           ? cli.value(dataDir)
                           : QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);

  tidelane::app::AppController controller(settings, QCoreApplication::applicationDirPath(), data,
                                          cli.value(history));
  controller.start(cli.isSet(monitor) ? tidelane::app::AppController::StartView::Monitor
                                      : tidelane::app::AppController::StartView::Chat);
  if (cli.isSet(send)) controller.sendWhenReady(cli.value(send));
  return QApplication::exec();
}
