// AppController: puts the app together. Either starts the bundled router and worker under
// a ServiceSupervisor, or points at a remote router; opens the chat history (a ChatStore
// at `historyPath`, by default `<dataDir>/history.sqlite`); wires the chat backend and
// the history to the window, and the monitor client to the monitor window (opened from
// View → Monitor, or at start). A history that cannot be opened is left untouched: the
// app says why in the status bar and chats without history.
//
// Endpoints: the bundled router (default), a remote router (both through GrpcChatBackend)
// or an OpenAI-compatible URL (OpenAiChatBackend). File → Settings applies a new choice at
// once and saves it, except the API key and the remote router's token, which go to the system
// keychain through a SecretVault (never to QSettings or a log), each as a KeptSecret: read back
// when needed; without a keychain service the user is told, and they are kept for the session
// only unless the user opts in to a file readable only by them. A remote router's token may
// instead be read from a file the user names (provisioned tokens, and settings from before the
// keychain held it). Bundled services started once keep running when another endpoint is
// chosen, so switching back is instant.
//
// The bundled worker signs its receipts with a key kept in the keychain too (WorkerIdentity),
// read while the router starts and handed to the worker over its stdin; without a keychain it
// stays in the worker's 0600 file, as the log says.
//
// Models: File → Models… (or "Manage models…" in the settings) opens the model manager over
// a ModelLibrary (`<dataDir>/models` plus the bundled model); "Use this model" restarts the
// bundled worker on it and remembers the choice.
//
// Threading: GUI thread only.
#pragma once

#include <QObject>
#include <QString>
#include <memory>
#include <optional>

#include "app/app_settings.h"
#include "ui/settings_dialog.h"

class QDialog;

namespace tidelane::ui {
class ChatBackend;
class MainWindow;
namespace monitor {
class MonitorWindow;
class DemoWindow;
}  // namespace monitor
namespace node {
class NodePanel;
}
}  // namespace tidelane::ui

namespace tidelane::app {

class ChatStore;
class GrpcChatBackend;
class OpenAiChatBackend;
class GrpcMonitorClient;
class ServiceSupervisor;
class SecretVault;
class KeptSecret;
class WorkerIdentity;
class ModelLibrary;
class ModelLibraryCatalog;
class HardwareSampler;
class DemoController;

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
  SecretVault* secrets() { return vault_.get(); }
  // The OpenAI-compatible endpoint's key this session (from the settings or the keychain).
  QString apiKey() const;
  // The remote router's token this session, when it is kept in the vault (not read from a file).
  QString remoteToken() const;
  // Created on first use: it reads every model file's header.
  ModelLibrary* modelLibrary();
  // The key name under which the OpenAI-compatible endpoint's API key is kept.
  static QString apiKeyName() { return QStringLiteral("openai-api-key"); }
  // The key name under which a remote router's bearer token is kept.
  static QString remoteTokenName() { return QStringLiteral("remote-router-token"); }
  GrpcMonitorClient* monitorClient() { return monitorClient_.get(); }
  ui::monitor::MonitorWindow* monitorWindow() { return monitorWindow_.get(); }  // null until shown
  // The monitor window's "Node" tab (this machine's hardware, the local worker); null until
  // the monitor is shown. Its hardware is sampled at 1 Hz from then on.
  ui::node::NodePanel* nodePanel() { return nodePanel_; }

 public slots:
  // Opens (or raises) the monitor window; it watches the router once its address is known.
  void showMonitor();
  // Opens the monitor on its "Node" tab (View → Node panel, Ctrl+Shift+N).
  void showNodePanel();
  // Opens the surge demo window (two clusters of its own, started when the user clicks).
  void showDemo();
  // Sends `text` in a new chat once the backend is ready (`tidelane --send`).
  void sendWhenReady(const QString& text);
  // Shows the settings dialog and applies what the user accepts.
  void showSettings();
  // What the settings dialog starts from, and applying what it returns (also for tests).
  ui::EndpointSettings endpointSettings() const;
  void applyEndpointSettings(const ui::EndpointSettings& chosen);
  // Chats go where `settings` say from now on. `apiKey` and `remoteToken` (when given; left
  // out: unchanged) are the secrets for this session; when `save` is true the settings are
  // saved with AppSettings::save() and the secrets stored in the vault.
  void applySettings(const AppSettings& settings, const QString& apiKey, bool save = true,
                     const std::optional<QString>& remoteToken = std::nullopt);
  // Opens the model manager (modal, over `parent` or the chat window).
  void showModelManager(QWidget* parent = nullptr);
  // The bundled worker runs `path` from now on, and the choice is remembered.
  void useModel(const QString& path);
  // The first-run screen (also Help → Welcome): what the bundled model is, with ways to a
  // larger model or another endpoint. Not modal; returns the dialog (deleted on close).
  QDialog* showWelcome();
  // File → Export chat / Import chat. Errors are shown in the window and returned in `error`.
  bool exportConversation(qint64 id, const QString& path, bool json, QString* error = nullptr);
  // Returns the new conversation's id (shown at once), or 0.
  qint64 importConversation(const QString& path, QString* error = nullptr);

 signals:
  // The API key was stored (or removed) where describe() of secrets() says; `message` says
  // what happened in words (also shown in the status bar).
  void apiKeyStored(bool ok, const QString& message);
  // The start-up read of the keychain is done: `found` when it held a key.
  void apiKeyLoaded(bool found, const QString& message);
  // The same two for the remote router's token (when it is kept in the vault).
  void remoteTokenStored(bool ok, const QString& message);
  void remoteTokenLoaded(bool found, const QString& message);

 private:
  // The router is reachable at `address`: chats and the monitor go there.
  // `caFile`: PEM CA for a remote router's TLS certificate; empty: plaintext (the bundled
  // router, private to this user).
  void connectTo(const QString& address, const QString& token, const QString& caFile = {});
  void startMonitorClient();
  // The node panel follows the bundled worker's node; a remote router's user picks one.
  void updateLocalNode();
  void startBundled();
  void connectRemote();
  // The vault answered for the API key or the router token.
  void onApiKeyLoaded(bool found, const QString& message);
  void onRemoteTokenLoaded(bool found, const QString& message);

  AppSettings settings_;
  QString binDir_;
  QString dataDir_;
  QString routerAddress_;
  QString routerToken_;
  QString routerCaFile_;
  QString historyError_;
  std::unique_ptr<ChatStore> store_;
  std::unique_ptr<GrpcChatBackend> backend_;
  std::unique_ptr<OpenAiChatBackend> openAiBackend_;
  std::unique_ptr<GrpcMonitorClient> monitorClient_;
  std::unique_ptr<ui::monitor::MonitorWindow> monitorWindow_;
  // Declared before the window that shows it, so the window goes first.
  std::unique_ptr<DemoController> demo_;
  std::unique_ptr<ui::monitor::DemoWindow> demoWindow_;
  std::unique_ptr<HardwareSampler> sampler_;
  ui::node::NodePanel* nodePanel_ = nullptr;  // owned by monitorWindow_
  std::unique_ptr<ServiceSupervisor> supervisor_;
  std::unique_ptr<ui::MainWindow> window_;
  std::unique_ptr<SecretVault> vault_;
  // After the vault they use.
  std::unique_ptr<KeptSecret> apiKey_;
  std::unique_ptr<KeptSecret> remoteToken_;
  std::unique_ptr<WorkerIdentity> workerIdentity_;  // the bundled worker's key, at its start
  std::unique_ptr<ModelLibrary> library_;
  std::unique_ptr<ModelLibraryCatalog> catalog_;
};

}  // namespace tidelane::app
