#include "app/app_controller.h"

#include <QFile>

#include "app/grpc_chat_backend.h"
#include "app/service_supervisor.h"
#include "ui/main_window.h"

namespace tidelane::app {

AppController::AppController(AppSettings settings, QString binDir, QString dataDir, QObject* parent)
    : QObject(parent),
      settings_(std::move(settings)),
      binDir_(std::move(binDir)),
      dataDir_(std::move(dataDir)),
      backend_(std::make_unique<GrpcChatBackend>()) {
  window_ = std::make_unique<ui::MainWindow>(backend_.get());
}

AppController::~AppController() {
  // Window first (it points at the backend), then the backend's calls, then the children.
  window_.reset();
  backend_.reset();
  supervisor_.reset();
}

void AppController::start() {
  window_->show();
  if (settings_.endpoint == AppSettings::Endpoint::RemoteRouter) {
    QFile tokenFile(settings_.remoteTokenFile);
    if (!tokenFile.open(QIODevice::ReadOnly)) {
      window_->showServiceStatus(tr("Cannot read the remote router's token file %1: %2")
                                     .arg(settings_.remoteTokenFile, tokenFile.errorString()));
      return;
    }
    const QString token = QString::fromUtf8(tokenFile.readLine()).trimmed();
    backend_->setEndpoint(settings_.remoteAddress, token);
    return;
  }

  ServiceSupervisor::Options options;
  options.binDir = binDir_;
  options.dataDir = dataDir_;
  options.workerProfile = settings_.workerProfile;
  supervisor_ = std::make_unique<ServiceSupervisor>(options);
  connect(supervisor_.get(), &ServiceSupervisor::statusChanged, window_.get(),
          &ui::MainWindow::showServiceStatus);
  connect(supervisor_.get(), &ServiceSupervisor::failed, window_.get(),
          &ui::MainWindow::showServiceStatus);
  connect(supervisor_.get(), &ServiceSupervisor::ready, this, [this] {
    if (!backend_->isReady()) {
      backend_->setEndpoint(supervisor_->grpcAddress(), supervisor_->token());
    }
  });
  supervisor_->start();
}

}  // namespace tidelane::app
