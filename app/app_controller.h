// AppController: puts the app together. Either starts the bundled router and worker under
// a ServiceSupervisor, or points at a remote router; opens the chat history (a ChatStore
// at `historyPath`, by default `<dataDir>/history.sqlite`); wires the chat backend and
// the history to the window, and the monitor client to the monitor window (opened from
// View → Monitor, or at start). A history that cannot be opened is left untouched: the
// app says why in the status bar and chats without history.
//
// Endpoints: the bundled router (default), a remote router (both through GrpcChatBackend)
// or an OpenAI-compatible URL (OpenAiChatBackend). File → Settings applies a new choice at
// once and saves it, except the API key, which is held here for the session only (never
// in QSettings or a log; the keychain comes next). Bundled services started once keep
// running when another endpoint is chosen, so switching back is instant.
//
// Threading: GUI thread only.
#pragma once

#include <QObject>
#include <QString>
#include <memory>

#include "app/app_settings.h"

namespace tidelane::ui {
class ChatBackend;
class MainWindow;
namespace monitor {
class MonitorWindow;
}
}  // namespace tidelane::ui

namespace tidelane::app {

class ChatStore;
class GrpcChatBackend;
class OpenAiChatBackend;
class GrpcMonitorClient;
class ServiceSupervisor;

class AppController : public QObject {
  Q_OBJECT

 public:
  // `binDir` holds the daemons; `dataDir` the router's state, the children's logs and the
  // chat history unless `historyPath` names another file.
  AppController(AppSettings settings, QString binDir, QString dataDir, QString historyPath = {},
                QObject* parent = nullptr);
  ~AppController() override;

  enum class StartView { Chat, Monitor };

  // Starts the services (or connects) and shows the chat window, or only the monitor
  // (`tidelane --monitor`).
  void start(StartView view = StartView::Chat);

  ui::MainWindow* window() { return window_.get(); }
  ServiceSupervisor* supervisor() { return supervisor_.get(); }  // null for a remote router
  GrpcChatBackend* backend() { return backend_.get(); }
  OpenAiChatBackend* openAiBackend() { return openAiBackend_.get(); }
  // The backend chats go through now (one of the two above).
  ui::ChatBackend* activeBackend();
  const AppSettings& settings() const { return settings_; }
  ChatStore* store() { return store_.get(); }  // null when the history could not be opened
  GrpcMonitorClient* monitorClient() { return monitorClient_.get(); }
  ui::monitor::MonitorWindow* monitorWindow() { return monitorWindow_.get(); }  // null until shown

 public slots:
  // Opens (or raises) the monitor window; it watches the router once its address is known.
  void showMonitor();
  // Sends `text` in a new chat once the backend is ready (`tidelane --send`).
  void sendWhenReady(const QString& text);
  // Shows the settings dialog and applies what the user accepts.
  void showSettings();
  // Chats go where `settings` say from now on; `apiKey` is kept for this session only.
  // Saved with AppSettings::save() when `save` is true.
  void applySettings(const AppSettings& settings, const QString& apiKey, bool save = true);

 private:
  // The router is reachable at `address`: chats and the monitor go there.
  void connectTo(const QString& address, const QString& token);
  void startMonitorClient();
  void startBundled();
  void connectRemote();

  AppSettings settings_;
  QString binDir_;
  QString dataDir_;
  QString routerAddress_;
  QString routerToken_;
  QString historyError_;
  std::unique_ptr<ChatStore> store_;
  QString apiKey_;  // session only
  std::unique_ptr<GrpcChatBackend> backend_;
  std::unique_ptr<OpenAiChatBackend> openAiBackend_;
  std::unique_ptr<GrpcMonitorClient> monitorClient_;
  std::unique_ptr<ui::monitor::MonitorWindow> monitorWindow_;
  std::unique_ptr<ServiceSupervisor> supervisor_;
  std::unique_ptr<ui::MainWindow> window_;
};

}  // namespace tidelane::app
