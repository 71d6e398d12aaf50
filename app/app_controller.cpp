#include "app/app_controller.h"

#include <QFile>

#include "app/chat_store.h"
#include "app/grpc_chat_backend.h"
#include "app/grpc_monitor_client.h"
#include "app/service_supervisor.h"
#include "ui/chat_view.h"
#include "ui/main_window.h"
#include "ui/monitor/monitor_window.h"

namespace tidelane::app {

AppController::AppController(AppSettings settings, QString binDir, QString dataDir,
                             QString historyPath, QObject* parent)
    : QObject(parent),
      settings_(std::move(settings)),
      binDir_(std::move(binDir)),
      dataDir_(std::move(dataDir)),
      store_(std::make_unique<ChatStore>()),
      backend_(std::make_unique<GrpcChatBackend>()),
      monitorClient_(std::make_unique<GrpcMonitorClient>()) {
  if (historyPath.isEmpty()) historyPath = dataDir_ + QStringLiteral("/history.sqlite");
  if (!store_->open(historyPath)) {
    historyError_ = store_->lastError();
    qWarning("%s", qPrintable(historyError_));
    store_.reset();
  }
  window_ = std::make_unique<ui::MainWindow>(backend_.get(), store_.get());
  connect(window_.get(), &ui::MainWindow::monitorRequested, this, &AppController::showMonitor);
}

AppController::~AppController() {
  // Windows first (they point at the backend and the monitor client), then the clients'
  // calls and threads, then the children.
  monitorWindow_.reset();
  window_.reset();
  monitorClient_.reset();
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
  if (settings_.endpoint == AppSettings::Endpoint::RemoteRouter) {
    QFile tokenFile(settings_.remoteTokenFile);
    if (!tokenFile.open(QIODevice::ReadOnly)) {
      const QString message = tr("Cannot read the remote router's token file %1: %2")
                                  .arg(settings_.remoteTokenFile, tokenFile.errorString());
      window_->showServiceStatus(message);
      if (monitorWindow_) monitorWindow_->showStatus(message);
      return;
    }
    connectTo(settings_.remoteAddress, QString::fromUtf8(tokenFile.readLine()).trimmed());
    return;
  }

  ServiceSupervisor::Options options;
  options.binDir = binDir_;
  options.dataDir = dataDir_;
  options.workerProfile = settings_.workerProfile;
  supervisor_ = std::make_unique<ServiceSupervisor>(options);
  for (auto signal : {&ServiceSupervisor::statusChanged, &ServiceSupervisor::failed}) {
    connect(supervisor_.get(), signal, window_.get(), &ui::MainWindow::showServiceStatus);
    connect(supervisor_.get(), signal, this, [this](const QString& message) {
      if (monitorWindow_) monitorWindow_->showStatus(message);
    });
  }
  connect(supervisor_.get(), &ServiceSupervisor::ready, this, [this] {
    // A restarted router comes back on the same port: the clients reconnect by themselves.
    if (!backend_->isReady() || routerAddress_ != supervisor_->grpcAddress()) {
      connectTo(supervisor_->grpcAddress(), supervisor_->token());
    }
  });
  supervisor_->start();
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
  if (backend_->isReady()) {
    go();
    return;
  }
  auto once = std::make_shared<QMetaObject::Connection>();
  *once = connect(backend_.get(), &ui::ChatBackend::readyChanged, this, [once, go](bool ready) {
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
