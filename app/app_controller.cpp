#include "app/app_controller.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>

#include "app/bundled_model.h"
#include "app/chat_store.h"
#include "app/conversation_io.h"
#include "app/demo_controller.h"
#include "app/grpc_chat_backend.h"
#include "app/grpc_monitor_client.h"
#include "app/hardware_sampler.h"
#include "app/model_catalog.h"
#include "app/model_info.h"
#include "app/model_library.h"
#include "app/openai_chat_backend.h"
#include "app/receipt_check.h"
#include "app/secret_store.h"
#include "app/service_supervisor.h"
#include "app/worker_identity.h"
#include "ui/chat_view.h"
#include "ui/generation_bar.h"
#include "ui/main_window.h"
#include "ui/model_manager_dialog.h"
#include "ui/monitor/demo_window.h"
#include "ui/monitor/monitor_window.h"
#include "ui/node/node_panel.h"
#include "ui/node/node_panel_model.h"
#include "ui/settings_dialog.h"
#include "ui/theme.h"
#include "ui/welcome_dialog.h"

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
  window_->chatView()->model()->setReceiptChecker(&checkReceipt);  // receipt badges
  connect(window_.get(), &ui::MainWindow::monitorRequested, this, &AppController::showMonitor);
  connect(window_.get(), &ui::MainWindow::nodePanelRequested, this, &AppController::showNodePanel);
  connect(window_.get(), &ui::MainWindow::demoRequested, this, &AppController::showDemo);
  connect(window_.get(), &ui::MainWindow::settingsRequested, this, &AppController::showSettings);
  connect(window_.get(), &ui::MainWindow::modelsRequested, this, [this] { showModelManager(); });
  connect(window_.get(), &ui::MainWindow::welcomeRequested, this, &AppController::showWelcome);
  connect(
      window_.get(), &ui::MainWindow::exportRequested, this,
      [this](qint64 id, const QString& path, bool json) { exportConversation(id, path, json); });
  connect(window_.get(), &ui::MainWindow::importRequested, this,
          [this](const QString& path) { importConversation(path); });
  // Per-conversation settings: new chats start from the saved defaults; presets and defaults
  // the user saves from the bar are kept in the settings.
  auto* chat = window_->chatView();
  chat->setPresets(settings_.userPresets);
  chat->setDefaultSettings(settings_.chatDefaults);
  connect(chat->generationBar(), &ui::GenerationBar::presetSaved, this,
          [this](const ui::PromptPreset& preset) {
            settings_.userPresets.removeIf(
                [&preset](const ui::PromptPreset& p) { return p.id == preset.id; });
            settings_.userPresets.append(preset);
            AppSettings::saveUserPresets(settings_.userPresets);
            window_->showServiceStatus(tr("Saved the preset “%1”.").arg(preset.name));
          });
  connect(chat->generationBar(), &ui::GenerationBar::defaultsChosen, this,
          [this](const ui::ConversationSettings& defaults) {
            settings_.chatDefaults = defaults;
            AppSettings::saveChatDefaults(defaults);
            window_->chatView()->setDefaultSettings(defaults);
            window_->showServiceStatus(tr("New chats will use these settings."));
          });
  vault_ = std::make_unique<SecretVault>(std::make_unique<KeychainSecretStore>(),
                                         QDir(dataDir_).filePath(QStringLiteral("secrets.json")),
                                         settings_.secretsInFile);
  apiKey_ = std::make_unique<KeptSecret>(vault_.get(), apiKeyName(), tr("API key"),
                                         QStringLiteral("endpoint/apiKey"));
  remoteToken_ =
      std::make_unique<KeptSecret>(vault_.get(), remoteTokenName(), tr("remote router token"));
  connect(apiKey_.get(), &KeptSecret::loaded, this, &AppController::onApiKeyLoaded);
  connect(remoteToken_.get(), &KeptSecret::loaded, this, &AppController::onRemoteTokenLoaded);
  for (auto [secret, signal] : {std::pair{apiKey_.get(), &AppController::apiKeyStored},
                                std::pair{remoteToken_.get(), &AppController::remoteTokenStored}}) {
    connect(secret, &KeptSecret::stored, this,
            [this, sig = signal](bool ok, const QString& message) {
              window_->showServiceStatus(message);
              emit(this->*sig)(ok, message);
            });
  }
}

QString AppController::apiKey() const {
  return apiKey_->value();
}

QString AppController::remoteToken() const {
  return remoteToken_->value();
}

ui::ChatBackend* AppController::activeBackend() {
  if (settings_.endpoint == AppSettings::Endpoint::OpenAiCompatible) return openAiBackend_.get();
  return backend_.get();
}

AppController::~AppController() {
  // Windows first (they point at the backend and the monitor client), then the clients'
  // calls and threads, then the children.
  monitorWindow_.reset();
  demoWindow_.reset();
  if (demo_) demo_->stop();  // its clusters' processes end with the app
  demo_.reset();
  nodePanel_ = nullptr;
  sampler_.reset();
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
    window_->restoreWindowState();
    window_->show();
    if (settings_.showWelcome) {
      showWelcome();
      AppSettings::rememberWelcomeShown();
      settings_.showWelcome = false;
    }
  }
  if (!historyError_.isEmpty()) window_->showServiceStatus(historyError_);
  applySettings(settings_, apiKey_->value(), false);
  // The API key is read only when it is needed (or an old settings file holds one); the remote
  // router's token when chats go there (connectRemote).
  if (settings_.endpoint == AppSettings::Endpoint::OpenAiCompatible || apiKey_->hasLegacyCopy()) {
    apiKey_->load();
  }
}

void AppController::onApiKeyLoaded(bool found, const QString& message) {
  if (found && settings_.endpoint == AppSettings::Endpoint::OpenAiCompatible) {
    openAiBackend_->setEndpoint(QUrl(settings_.openAiUrl), apiKey_->value(), settings_.openAiModel);
  }
  // After setEndpoint, whose "Connected" line would otherwise hide this one.
  if (!message.isEmpty()) window_->showServiceStatus(message);
  emit apiKeyLoaded(found, message);
}

void AppController::onRemoteTokenLoaded(bool found, const QString& message) {
  if (settings_.endpoint == AppSettings::Endpoint::RemoteRouter && !settings_.remoteTokenFromFile) {
    if (!remoteToken_->value().isEmpty()) {
      connectTo(settings_.remoteAddress, remoteToken_->value(), settings_.remoteCaFile);
      // After connectTo, whose lines would otherwise hide this one.
      if (!message.isEmpty()) window_->showServiceStatus(message);
    } else {
      const QString missing = message.isEmpty()
                                  ? tr("No token is stored for the remote router: paste it in "
                                       "File → Settings.")
                                  : message;
      window_->showServiceStatus(missing);
      if (monitorWindow_) monitorWindow_->showStatus(missing);
    }
  } else if (!message.isEmpty()) {
    window_->showServiceStatus(message);
  }
  emit remoteTokenLoaded(found, message);
}

ModelLibrary* AppController::modelLibrary() {
  if (!library_) {
    library_ = std::make_unique<ModelLibrary>(QDir(dataDir_).filePath(QStringLiteral("models")),
                                              BundledModelPath(binDir_));
  }
  return library_.get();
}

void AppController::showModelManager(QWidget* parent) {
  ModelLibrary* library = modelLibrary();
  if (!catalog_) {
    catalog_ = std::make_unique<ModelLibraryCatalog>(library);
    connect(catalog_.get(), &ModelLibraryCatalog::modelChosen, this, &AppController::useModel);
  }
  library->setActiveModel(supervisor_ ? supervisor_->modelPath() : settings_.modelPath);
  library->refresh();
  ui::ModelManagerDialog dialog(catalog_.get(), parent ? parent : window_.get());
  dialog.exec();
}

QDialog* AppController::showWelcome() {
  ui::BundledModelDetails details;
  const QString path = BundledModelPath(binDir_);
  if (path.isEmpty()) {
    details.problem = tr("The bundled model is not installed; get a model from File → Models….");
  } else {
    const ModelInfo info = ReadModelInfo(path);
    if (!info.ok()) {
      details.problem = info.error;
    } else {
      details.name = info.name;
      details.parameters = HumanCount(info.parameterCount);
      details.size = HumanBytes(info.sizeBytes);
      details.architecture = info.architecture;
      details.quantisation = info.quantisation;
      details.contextLength =
          info.contextLength > 0 ? tr("%1 tokens").arg(info.contextLength) : QString();
      details.path = QDir::toNativeSeparators(path);
    }
  }
  auto* dialog = new ui::WelcomeDialog(details, window_.get());
  dialog->setAttribute(Qt::WA_DeleteOnClose);
  connect(dialog, &ui::WelcomeDialog::largerModelRequested, this, [this] { showModelManager(); });
  connect(dialog, &ui::WelcomeDialog::endpointRequested, this, &AppController::showSettings);
  dialog->show();
  dialog->raise();
  return dialog;
}

bool AppController::exportConversation(qint64 id, const QString& path, bool json, QString* error) {
  QString why = tr("The chat history is not open.");
  const bool ok =
      store_ && ConversationIo::exportToFile(
                    *store_, id, json ? ExportFormat::Json : ExportFormat::Markdown, path, &why);
  if (error) *error = ok ? QString() : why;
  if (ok) {
    window_->showServiceStatus(tr("Exported the chat to %1.").arg(QDir::toNativeSeparators(path)));
  } else {
    window_->showError(tr("Export failed"), why);
  }
  return ok;
}

qint64 AppController::importConversation(const QString& path, QString* error) {
  QString why = tr("The chat history is not open.");
  const qint64 id = store_ ? ConversationIo::importFromFile(*store_, path, &why) : 0;
  if (error) *error = id ? QString() : why;
  if (id) {
    window_->chatView()->openConversation(id);
    window_->showServiceStatus(tr("Imported %1.").arg(QDir::toNativeSeparators(path)));
  } else {
    window_->showError(tr("Import failed"), why);
  }
  return id;
}

void AppController::useModel(const QString& path) {
  settings_.modelPath = path;
  settings_.chosenModelPath = path;
  AppSettings::rememberChosenModel(path);
  if (library_) library_->setActiveModel(path);
  const QString name = QFileInfo(path).fileName();
  if (supervisor_) {
    supervisor_->setModelPath(path);  // says "Restarting the bundled worker on …"
  }
  const QString message =
      settings_.endpoint == AppSettings::Endpoint::Bundled
          ? tr("The bundled worker now runs %1.").arg(name)
          : tr("The bundled worker will run %1 (chats go elsewhere now; choose the bundled "
               "model in File → Settings).")
                .arg(name);
  if (catalog_) emit catalog_->message(message, false);
  if (!supervisor_ || settings_.endpoint != AppSettings::Endpoint::Bundled) {
    window_->showServiceStatus(message);
  }
}

void AppController::applySettings(const AppSettings& settings, const QString& apiKey, bool save,
                                  const std::optional<QString>& remoteToken) {
  const bool sameRemote = settings.remoteAddress == settings_.remoteAddress &&
                          settings.remoteTokenFromFile == settings_.remoteTokenFromFile &&
                          settings.remoteTokenFile == settings_.remoteTokenFile &&
                          settings.remoteCaFile == settings_.remoteCaFile &&
                          (!remoteToken || *remoteToken == remoteToken_->value());
  const auto before = settings_.endpoint;
  const bool themeChanged = settings.theme != settings_.theme;
  settings_ = settings;
  if (themeChanged) ui::applyTheme(ui::themeFromName(settings_.theme));
  apiKey_->setValue(apiKey);
  if (remoteToken) remoteToken_->setValue(*remoteToken);
  if (save) {
    settings_.save();  // the secrets are not part of AppSettings: they go to the vault
    apiKey_->store();
    if (remoteToken) remoteToken_->store();
  }
  switch (settings_.endpoint) {
    case AppSettings::Endpoint::OpenAiCompatible:
      openAiBackend_->setEndpoint(QUrl(settings_.openAiUrl), apiKey_->value(),
                                  settings_.openAiModel);
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
  if (!settings_.remoteTokenFromFile) {
    if (remoteToken_->value().isEmpty()) {
      // Not read yet (or nothing stored): onRemoteTokenLoaded connects, or says what is missing.
      remoteToken_->load();
      return;
    }
    connectTo(settings_.remoteAddress, remoteToken_->value(), settings_.remoteCaFile);
    return;
  }
  QFile tokenFile(settings_.remoteTokenFile);
  if (!tokenFile.open(QIODevice::ReadOnly)) {
    const QString message = tr("Cannot read the remote router's token file %1: %2")
                                .arg(settings_.remoteTokenFile, tokenFile.errorString());
    window_->showServiceStatus(message);
    if (monitorWindow_) monitorWindow_->showStatus(message);
    return;
  }
  connectTo(settings_.remoteAddress, QString::fromUtf8(tokenFile.readLine()).trimmed(),
            settings_.remoteCaFile);
}

void AppController::startBundled() {
  ServiceSupervisor::Options options;
  options.binDir = binDir_;
  options.dataDir = dataDir_;
  options.workerProfile = settings_.workerProfile;
  options.modelPath = settings_.modelPath;
  options.awaitWorkerIdentity = true;
  supervisor_ = std::make_unique<ServiceSupervisor>(options);
  for (auto signal : {&ServiceSupervisor::statusChanged, &ServiceSupervisor::failed}) {
    connect(supervisor_.get(), signal, window_.get(), &ui::MainWindow::showServiceStatus);
    connect(supervisor_.get(), signal, this, [this](const QString& message) {
      if (monitorWindow_) monitorWindow_->showStatus(message);
    });
  }
  connect(supervisor_.get(), &ServiceSupervisor::ready, this, [this] {
    if (settings_.endpoint != AppSettings::Endpoint::Bundled) return;
    // A restarted router comes back on the same address: the clients reconnect by themselves.
    if (!backend_->isReady() || routerAddress_ != supervisor_->grpcAddress()) {
      connectTo(supervisor_->grpcAddress(), supervisor_->token());
    }
  });
  supervisor_->start();
  // The keychain is read while the router starts; only the worker waits for its key.
  workerIdentity_ = std::make_unique<WorkerIdentity>(vault_.get(), WorkerIdentity::defaultFile());
  workerIdentity_->resolve([this](const WorkerIdentity::Outcome& outcome) {
    if (outcome.identity.isEmpty()) {
      qWarning("%s", qPrintable(outcome.message));
    } else {
      qInfo("%s", qPrintable(outcome.message));
    }
    if (supervisor_) supervisor_->setWorkerIdentity(outcome.identity, outcome.file);
  });
}

ui::EndpointSettings AppController::endpointSettings() const {
  ui::EndpointSettings current;
  current.kind = settings_.endpoint == AppSettings::Endpoint::RemoteRouter
                     ? ui::EndpointSettings::Kind::RemoteRouter
                 : settings_.endpoint == AppSettings::Endpoint::OpenAiCompatible
                     ? ui::EndpointSettings::Kind::OpenAiCompatible
                     : ui::EndpointSettings::Kind::Bundled;
  current.remoteAddress = settings_.remoteAddress;
  current.remoteToken = remoteToken_->value();
  current.remoteTokenFromFile = settings_.remoteTokenFromFile;
  current.remoteTokenFile = settings_.remoteTokenFile;
  current.remoteCaFile = settings_.remoteCaFile;
  current.openAiUrl = settings_.openAiUrl;
  current.openAiModel = settings_.openAiModel;
  current.apiKey = apiKey_->value();
  current.keyStorageNote = vault_->describe();
  current.keychainMissing = vault_->mode() == SecretVault::Mode::SessionOnly;
  current.storeKeyInFile = vault_->mode() == SecretVault::Mode::File;
  current.theme = settings_.theme;
  return current;
}

void AppController::showSettings() {
  ui::SettingsDialog dialog(endpointSettings(), window_.get());
  connect(&dialog, &ui::SettingsDialog::manageModelsRequested, this,
          [this, &dialog] { showModelManager(&dialog); });
  if (dialog.exec() != QDialog::Accepted) return;
  applyEndpointSettings(dialog.values());
}

void AppController::applyEndpointSettings(const ui::EndpointSettings& chosen) {
  AppSettings next = settings_;
  next.endpoint = chosen.kind == ui::EndpointSettings::Kind::RemoteRouter
                      ? AppSettings::Endpoint::RemoteRouter
                  : chosen.kind == ui::EndpointSettings::Kind::OpenAiCompatible
                      ? AppSettings::Endpoint::OpenAiCompatible
                      : AppSettings::Endpoint::Bundled;
  next.remoteAddress = chosen.remoteAddress;
  next.remoteTokenFromFile = chosen.remoteTokenFromFile;
  next.remoteTokenFile = chosen.remoteTokenFile;
  next.remoteCaFile = chosen.remoteCaFile;
  QString token = chosen.remoteToken;
  if (!chosen.remoteTokenFromFile && token.isEmpty() && settings_.remoteTokenFromFile &&
      !settings_.remoteTokenFile.isEmpty()) {
    // Moving from the token file to the keychain without pasting a token: the file's token
    // goes to the keychain. The file stays (it may be provisioned, e.g. /etc/tidelane/token).
    QFile file(settings_.remoteTokenFile);
    if (file.open(QIODevice::ReadOnly)) {
      token = QString::fromUtf8(file.readLine()).trimmed();
    } else {
      window_->showServiceStatus(tr("Cannot read the remote router's token file %1: %2")
                                     .arg(settings_.remoteTokenFile, file.errorString()));
    }
  }
  next.openAiUrl = chosen.openAiUrl;
  next.openAiModel = chosen.openAiModel;
  next.theme = chosen.theme;
  if (chosen.storeKeyInFile != (vault_->mode() == SecretVault::Mode::File)) {
    // The user explicitly chose the file, or went back: the key moves to the new place.
    next.secretsInFile = chosen.storeKeyInFile;
    vault_->setUseFile(chosen.storeKeyInFile);
    apiKey_->forgetStored();
    remoteToken_->forgetStored();
  }
  applySettings(next, chosen.apiKey, true, token);
}

void AppController::connectTo(const QString& address, const QString& token, const QString& caFile) {
  routerAddress_ = address;
  routerToken_ = token;
  routerCaFile_ = caFile;
  backend_->setEndpoint(address, token, caFile);
  if (!backend_->lastError().isEmpty()) {
    const QString message = tr("Cannot use the TLS CA file: %1").arg(backend_->lastError());
    window_->showServiceStatus(message);
    if (monitorWindow_) monitorWindow_->showStatus(message);
  }
  if (monitorWindow_) startMonitorClient();
  updateLocalNode();
}

void AppController::updateLocalNode() {
  if (!nodePanel_) return;
  const bool bundled = supervisor_ && settings_.endpoint == AppSettings::Endpoint::Bundled &&
                       routerAddress_ == supervisor_->grpcAddress();
  nodePanel_->model()->setLocalNode(bundled ? supervisor_->workerName() : QString());
}

void AppController::showNodePanel() {
  showMonitor();
  monitorWindow_->showNodeTab();
}

void AppController::showDemo() {
  if (!demoWindow_) {
    DemoController::Options o;
    o.binDir = binDir_;
    o.dataDir = dataDir_;
    o.tracePath = DemoController::findTrace(o.binDir);
    demo_ = std::make_unique<DemoController>(o);
    demoWindow_ = std::make_unique<ui::monitor::DemoWindow>(demo_.get());
  }
  demoWindow_->show();
  demoWindow_->raise();
  demoWindow_->activateWindow();
}

void AppController::showMonitor() {
  if (!monitorWindow_) {
    monitorWindow_ = std::make_unique<ui::monitor::MonitorWindow>(monitorClient_.get());
    sampler_ = std::make_unique<HardwareSampler>();
    nodePanel_ = new ui::node::NodePanel(monitorClient_.get(), sampler_.get());
    monitorWindow_->setNodePanel(nodePanel_);
    updateLocalNode();
    sampler_->start();
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
  QString error;
  if (!monitorClient_->setCaFile(routerCaFile_, &error)) {
    if (monitorWindow_) monitorWindow_->showStatus(tr("Cannot use the TLS CA file: %1").arg(error));
    return;
  }
  monitorClient_->start(routerAddress_, routerToken_);
}

}  // namespace tidelane::app
