#include "app/app_controller.h"

#include <QFile>

#include "app/chat_store.h"
#include "app/grpc_chat_backend.h"
#include "app/grpc_monitor_client.h"
#include "app/openai_chat_backend.h"
#include "app/service_supervisor.h"
#include "ui/chat_view.h"
#include "ui/main_window.h"
#include "ui/monitor/monitor_window.h"
#include "ui/settings_dialog.h"

namespace tidelane::app {

AppController::AppController(AppSettings settings, QString binDir, QString dataDir,
                             QString historyPath, QObject* parent)
    : QObject(parent),
      settings_(std::move(settings)),
      binDir_(std::move(binDir)),
      dataDir_(std::move(dataDir)),
      store_(std::make_unique<ChatStore>()),
      backend_(std::make_unique<GrpcChatBackend>()),
      openAiBackend_(std::make_unique<OpenAiChatBackend>()),
      monitorClient_(std::make_unique<GrpcMonitorClient>()) {
  if (historyPath.isEmpty()) historyPath = dataDir_ + QStringLiteral("/history.sqlite");
  if (!store_->open(historyPath)) {
    historyError_ = store_->lastError();
    qWarning("%s", qPrintable(historyError_));
    store_.reset();
  }
  window_ = std::make_unique<ui::MainWindow>(backend_.get(), store_.get());
  connect(window_.get(), &ui::MainWindow::monitorRequested, this, &AppController::showMonitor);
  connect(window_.get(), &ui::MainWindow::settingsRequested, this, &AppController::showSettings);
}

ui::ChatBackend* AppController::activeBackend() {
  if (settings_.endpoint == AppSettings::Endpoint::OpenAiCompatible) return openAiBackend_.get();
  return backend_.get();
}

AppController::~AppController() {
  // Windows first (they point at the backend and the monitor client), then the clients'
  // calls and threads, then the children.
  monitorWindow_.reset();
  window_.reset();
  monitorClient_.reset();
  openAiBackend_.reset();
  backend_.reset();
  store_.reset();  // writes what is left of a streaming answer
  supervisor_.reset();
}

void AppController::start(StartView view) {
  if (view == StartView::Monitor) {
    showMonitor();
  } else {
    window_->show();
  }
  if (!historyError_.isEmpty()) window_->showServiceStatus(historyError_);
  applySettings(settings_, apiKey_, false);
}

void AppController::applySettings(const AppSettings& settings, const QString& apiKey, bool save) {
  const bool sameRemote = settings.remoteAddress == settings_.remoteAddress &&
                          settings.remoteTokenFile == settings_.remoteTokenFile;
  const auto before = settings_.endpoint;
  settings_ = settings;
  apiKey_ = apiKey;
  if (save) settings_.save();  // the key is not part of AppSettings
  switch (settings_.endpoint) {
    case AppSettings::Endpoint::OpenAiCompatible:
      openAiBackend_->setEndpoint(QUrl(settings_.openAiUrl), apiKey_, settings_.openAiModel);
      window_->setBackend(openAiBackend_.get());
      if (!openAiBackend_->isReady()) {
        window_->showServiceStatus(
            tr("Set the OpenAI-compatible endpoint's URL in File → Settings."));
      }
      return;
    case AppSettings::Endpoint::RemoteRouter:
      window_->setBackend(backend_.get());
      if (before != settings_.endpoint || !sameRemote || !backend_->isReady()) connectRemote();
      return;
    case AppSettings::Endpoint::Bundled:
      window_->setBackend(backend_.get());
      if (!supervisor_) {
        startBundled();
      } else if (supervisor_->isReady() && routerAddress_ != supervisor_->grpcAddress()) {
        connectTo(supervisor_->grpcAddress(), supervisor_->token());
      }
      return;
  }
}

void AppController::connectRemote() {
  QFile tokenFile(settings_.remoteTokenFile);
  if (!tokenFile.open(QIODevice::ReadOnly)) {
    const QString message = tr("Cannot read the remote router's token file %1: %2")
                                .arg(settings_.remoteTokenFile, tokenFile.errorString());
    window_->showServiceStatus(message);
    if (monitorWindow_) monitorWindow_->showStatus(message);
    return;
  }
  connectTo(settings_.remoteAddress, QString::fromUtf8(tokenFile.readLine()).trimmed());
}

void AppController::startBundled() {
  ServiceSupervisor::Options options;
  options.binDir = binDir_;
  options.dataDir = dataDir_;
  options.workerProfile = settings_.workerProfile;
  options.modelPath = settings_.modelPath;
  supervisor_ = std::make_unique<ServiceSupervisor>(options);
  for (auto signal : {&ServiceSupervisor::statusChanged, &ServiceSupervisor::failed}) {
    connect(supervisor_.get(), signal, window_.get(), &ui::MainWindow::showServiceStatus);
    connect(supervisor_.get(), signal, this, [this](const QString& message) {
      if (monitorWindow_) monitorWindow_->showStatus(message);
    });
  }
  connect(supervisor_.get(), &ServiceSupervisor::ready, this, [this] {
    if (settings_.endpoint != AppSettings::Endpoint::Bundled) return;
    // A restarted router comes back on the same port: the clients reconnect by themselves.
    if (!backend_->isReady() || routerAddress_ != supervisor_->grpcAddress()) {
      connectTo(supervisor_->grpcAddress(), supervisor_->token());
    }
  });
  supervisor_->start();
}

void AppController::showSettings() {
  ui::EndpointSettings current;
  current.kind = settings_.endpoint == AppSettings::Endpoint::RemoteRouter
                     ? ui::EndpointSettings::Kind::RemoteRouter
                 : settings_.endpoint == AppSettings::Endpoint::OpenAiCompatible
                     ? ui::EndpointSettings::Kind::OpenAiCompatible
                     : ui::EndpointSettings::Kind::Bundled;
  current.remoteAddress = settings_.remoteAddress;
  current.remoteTokenFile = settings_.remoteTokenFile;
  current.openAiUrl = settings_.openAiUrl;
  current.openAiModel = settings_.openAiModel;
  current.apiKey = apiKey_;
  ui::SettingsDialog dialog(current, window_.get());
  if (dialog.exec() != QDialog::Accepted) return;
  const ui::EndpointSettings chosen = dialog.values();
  AppSettings next = settings_;
  next.endpoint = chosen.kind == ui::EndpointSettings::Kind::RemoteRouter
                      ? AppSettings::Endpoint::RemoteRouter
                  : chosen.kind == ui::EndpointSettings::Kind::OpenAiCompatible
                      ? AppSettings::Endpoint::OpenAiCompatible
                      : AppSettings::Endpoint::Bundled;
  next.remoteAddress = chosen.remoteAddress;
  next.remoteTokenFile = chosen.remoteTokenFile;
  next.openAiUrl = chosen.openAiUrl;
  next.openAiModel = chosen.openAiModel;
  applySettings(next, chosen.apiKey);
}

void AppController::connectTo(const QString& address, const QString& token) {
  routerAddress_ = address;
  routerToken_ = token;
  backend_->setEndpoint(address, token);
  if (monitorWindow_) startMonitorClient();
}

void AppController::showMonitor() {
  if (!monitorWindow_) {
    monitorWindow_ = std::make_unique<ui::monitor::MonitorWindow>(monitorClient_.get());
    if (!routerAddress_.isEmpty()) startMonitorClient();
  }
  monitorWindow_->show();
  monitorWindow_->raise();
  monitorWindow_->activateWindow();
}

void AppController::sendWhenReady(const QString& text) {
  const auto go = [this, text] {
    window_->chatView()->newConversation();
    window_->chatView()->sendText(text);
  };
  if (activeBackend()->isReady()) {
    go();
    return;
  }
  auto once = std::make_shared<QMetaObject::Connection>();
  *once = connect(activeBackend(), &ui::ChatBackend::readyChanged, this, [once, go](bool ready) {
    if (!ready) return;
    QObject::disconnect(*once);
    go();
  });
}

void AppController::startMonitorClient() {
  // Watching costs the router a snapshot every 250 ms, so it only runs once the monitor
  // has been opened.
  monitorClient_->start(routerAddress_, routerToken_);
}

}  // namespace tidelane::app
