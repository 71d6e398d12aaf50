// AppController: puts the app together. Either starts the bundled router and worker under
// a ServiceSupervisor, or points at a remote router; wires the chat backend to the window.
//
// Threading: GUI thread only.
#pragma once

#include <QObject>
#include <QString>
#include <memory>

#include "app/app_settings.h"

namespace tidelane::ui {
class MainWindow;
}

namespace tidelane::app {

class GrpcChatBackend;
class ServiceSupervisor;

class AppController : public QObject {
  Q_OBJECT

 public:
  // `binDir` holds the daemons; `dataDir` the router's state and the children's logs.
  AppController(AppSettings settings, QString binDir, QString dataDir, QObject* parent = nullptr);
  ~AppController() override;

  // Starts the services (or connects) and shows the window.
  void start();

  ui::MainWindow* window() { return window_.get(); }
  ServiceSupervisor* supervisor() { return supervisor_.get(); }  // null for a remote router
  GrpcChatBackend* backend() { return backend_.get(); }

 private:
  AppSettings settings_;
  QString binDir_;
  QString dataDir_;
  std::unique_ptr<GrpcChatBackend> backend_;
  std::unique_ptr<ServiceSupervisor> supervisor_;
  std::unique_ptr<ui::MainWindow> window_;
};

}  // namespace tidelane::app
