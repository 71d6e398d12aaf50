#include "ui/settings_dialog.h"

#include <QButtonGroup>
#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QRadioButton>
#include <QUrl>
#include <QVBoxLayout>

namespace tidelane::ui {

SettingsDialog::SettingsDialog(const EndpointSettings& current, QWidget* parent)
    : QDialog(parent),
      bundled_(new QRadioButton(tr("&Bundled model on this computer"), this)),
      remote_(new QRadioButton(tr("&Remote Tidelane router (gRPC)"), this)),
      openAi_(new QRadioButton(tr("&OpenAI-compatible endpoint (HTTP)"), this)),
      remoteAddress_(new QLineEdit(current.remoteAddress, this)),
      tokenInKeychain_(new QRadioButton(tr("T&oken:"), this)),
      tokenFromFile_(new QRadioButton(tr("Token &file:"), this)),
      remoteToken_(new QLineEdit(current.remoteToken, this)),
      remoteTokenFile_(new QLineEdit(current.remoteTokenFile, this)),
      remoteCaFile_(new QLineEdit(current.remoteCaFile, this)),
      openAiUrl_(new QLineEdit(current.openAiUrl, this)),
      openAiModel_(new QLineEdit(current.openAiModel, this)),
      apiKey_(new QLineEdit(current.apiKey, this)),
      storeInFile_(
          new QCheckBox(tr("Store the token and the key in a &file readable only by me"), this)),
      theme_(new QComboBox(this)) {
  setWindowTitle(tr("Settings"));
  setObjectName(QStringLiteral("settingsDialog"));
  bundled_->setObjectName(QStringLiteral("endpointBundled"));
  remote_->setObjectName(QStringLiteral("endpointRemote"));
  openAi_->setObjectName(QStringLiteral("endpointOpenAi"));
  remoteAddress_->setObjectName(QStringLiteral("remoteAddress"));
  remoteAddress_->setAccessibleName(tr("Remote router address"));
  remoteAddress_->setPlaceholderText(tr("host:port"));
  remoteToken_->setObjectName(QStringLiteral("remoteToken"));
  remoteToken_->setAccessibleName(tr("Remote router token"));
  remoteToken_->setEchoMode(QLineEdit::Password);
  remoteToken_->setPlaceholderText(tr("paste the router's bearer token"));
  remoteTokenFile_->setObjectName(QStringLiteral("remoteTokenFile"));
  remoteTokenFile_->setAccessibleName(tr("Remote router token file"));
  remoteTokenFile_->setPlaceholderText(tr("e.g. /etc/tidelane/token"));
  tokenInKeychain_->setObjectName(QStringLiteral("remoteTokenInKeychain"));
  tokenInKeychain_->setAccessibleName(tr("Paste the remote router token (kept with the API key)"));
  tokenFromFile_->setObjectName(QStringLiteral("remoteTokenFromFile"));
  tokenFromFile_->setAccessibleName(tr("Read the remote router token from a file"));
  tokenFromFile_->setToolTip(tr("For tokens an administrator provisions as a file"));
  // Their own group: the endpoint choice above is a separate set of radio buttons.
  auto* tokenSource = new QButtonGroup(this);
  tokenSource->addButton(tokenInKeychain_);
  tokenSource->addButton(tokenFromFile_);
  (current.remoteTokenFromFile ? tokenFromFile_ : tokenInKeychain_)->setChecked(true);
  remoteCaFile_->setObjectName(QStringLiteral("remoteCaFile"));
  remoteCaFile_->setAccessibleName(tr("Remote router TLS CA file"));
  remoteCaFile_->setPlaceholderText(tr("empty: plaintext (loopback or a trusted network)"));
  openAiUrl_->setObjectName(QStringLiteral("openAiUrl"));
  openAiUrl_->setAccessibleName(tr("Endpoint URL"));
  openAiUrl_->setPlaceholderText(tr("http://127.0.0.1:8080"));
  openAiModel_->setObjectName(QStringLiteral("openAiModel"));
  openAiModel_->setAccessibleName(tr("Model"));
  openAiModel_->setPlaceholderText(tr("the endpoint's default"));
  apiKey_->setObjectName(QStringLiteral("apiKey"));
  apiKey_->setAccessibleName(tr("API key"));
  apiKey_->setEchoMode(QLineEdit::Password);

  auto* remoteBox = new QGroupBox(tr("Remote router"), this);
  auto* remoteForm = new QFormLayout(remoteBox);
  remoteForm->addRow(tr("&Address:"), remoteAddress_);
  remoteForm->addRow(tokenInKeychain_, remoteToken_);
  auto* tokenNote = new QLabel(current.keyStorageNote.isEmpty()
                                   ? tr("The token is stored in the system keychain.")
                                   : current.keyStorageNote,
                               this);
  tokenNote->setObjectName(QStringLiteral("remoteTokenNote"));
  tokenNote->setAccessibleName(tr("Where the remote router token is kept"));
  tokenNote->setWordWrap(true);
  remoteForm->addRow(QString(), tokenNote);
  remoteForm->addRow(tokenFromFile_, remoteTokenFile_);
  remoteForm->addRow(tr("TLS &CA file:"), remoteCaFile_);

  auto* openAiBox = new QGroupBox(tr("OpenAI-compatible endpoint"), this);
  auto* openAiForm = new QFormLayout(openAiBox);
  openAiForm->addRow(tr("&URL:"), openAiUrl_);
  openAiForm->addRow(tr("&Model:"), openAiModel_);
  openAiForm->addRow(tr("API &key:"), apiKey_);
  auto* note =
      new QLabel(current.keyStorageNote.isEmpty() ? tr("The key is stored in the system keychain.")
                                                  : current.keyStorageNote,
                 this);
  note->setObjectName(QStringLiteral("apiKeyNote"));
  note->setAccessibleName(tr("Where the API key is kept"));
  note->setWordWrap(true);
  openAiForm->addRow(QString(), note);
  // The only alternative to the keychain, offered only without one, and never chosen for the
  // user.
  storeInFile_->setObjectName(QStringLiteral("storeKeyInFile"));
  storeInFile_->setAccessibleName(
      tr("Store the remote router token and the API key in a file readable only by me"));
  storeInFile_->setChecked(current.storeKeyInFile);
  const bool offerFile = current.keychainMissing || current.storeKeyInFile;
  storeInFile_->setVisible(offerFile);
  auto* warning =
      new QLabel(tr("Warning: the token and the key are then kept unencrypted in a file that "
                    "only your user account can read. Anyone who can log in as you, or read your "
                    "backups, can read them."),
                 this);
  warning->setObjectName(QStringLiteral("storeKeyInFileWarning"));
  warning->setWordWrap(true);
  warning->setVisible(offerFile);

  auto* models = new QPushButton(tr("Manage &models…"), this);
  models->setObjectName(QStringLiteral("manageModels"));
  models->setAccessibleName(tr("Manage models"));
  models->setToolTip(
      tr("Installed models, downloads and imports; the model the bundled worker "
         "runs"));
  connect(models, &QPushButton::clicked, this, &SettingsDialog::manageModelsRequested);

  theme_->setObjectName(QStringLiteral("theme"));
  theme_->setAccessibleName(tr("Theme"));
  theme_->addItem(tr("Follow the system"), QStringLiteral("system"));
  theme_->addItem(tr("Light"), QStringLiteral("light"));
  theme_->addItem(tr("Dark"), QStringLiteral("dark"));
  theme_->setCurrentIndex(std::max(0, theme_->findData(current.theme)));
  auto* appearance = new QFormLayout;
  appearance->addRow(tr("&Theme:"), theme_);

  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
  connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);

  auto* layout = new QVBoxLayout(this);
  layout->addWidget(new QLabel(tr("Where chats go:"), this));
  layout->addWidget(bundled_);
  layout->addWidget(models, 0, Qt::AlignLeft);
  layout->addWidget(remote_);
  layout->addWidget(remoteBox);
  layout->addWidget(openAi_);
  layout->addWidget(openAiBox);
  // Below both boxes: the vault keeps the router token and the API key alike.
  layout->addWidget(storeInFile_);
  layout->addWidget(warning);
  layout->addLayout(appearance);
  layout->addWidget(buttons);

  switch (current.kind) {
    case EndpointSettings::Kind::Bundled:
      bundled_->setChecked(true);
      break;
    case EndpointSettings::Kind::RemoteRouter:
      remote_->setChecked(true);
      break;
    case EndpointSettings::Kind::OpenAiCompatible:
      openAi_->setChecked(true);
      break;
  }
  for (auto* b : {bundled_, remote_, openAi_}) {
    connect(b, &QRadioButton::toggled, this, &SettingsDialog::updateEnabled);
  }
  connect(openAiUrl_, &QLineEdit::textChanged, this, &SettingsDialog::updateEnabled);
  connect(remoteAddress_, &QLineEdit::textChanged, this, &SettingsDialog::updateEnabled);
  connect(tokenFromFile_, &QRadioButton::toggled, this, &SettingsDialog::updateEnabled);
  updateEnabled();
}

void SettingsDialog::updateEnabled() {
  const bool remote = remote_->isChecked();
  for (QWidget* w : std::initializer_list<QWidget*>{remoteAddress_, remoteCaFile_, tokenInKeychain_,
                                                    tokenFromFile_}) {
    w->setEnabled(remote);
  }
  remoteToken_->setEnabled(remote && tokenInKeychain_->isChecked());
  remoteTokenFile_->setEnabled(remote && tokenFromFile_->isChecked());
  for (QWidget* w : std::initializer_list<QWidget*>{openAiUrl_, openAiModel_, apiKey_}) {
    w->setEnabled(openAi_->isChecked());
  }
  storeInFile_->setEnabled(remote || openAi_->isChecked());
  bool ok = true;
  if (remote_->isChecked()) ok = remoteAddress_->text().contains(QLatin1Char(':'));
  if (openAi_->isChecked()) {
    const QUrl url(openAiUrl_->text().trimmed(), QUrl::StrictMode);
    ok = url.isValid() && !url.host().isEmpty() &&
         (url.scheme() == QLatin1String("http") || url.scheme() == QLatin1String("https"));
  }
  if (auto* box = findChild<QDialogButtonBox*>()) box->button(QDialogButtonBox::Ok)->setEnabled(ok);
}

EndpointSettings SettingsDialog::values() const {
  EndpointSettings s;
  s.kind = openAi_->isChecked()   ? EndpointSettings::Kind::OpenAiCompatible
           : remote_->isChecked() ? EndpointSettings::Kind::RemoteRouter
                                  : EndpointSettings::Kind::Bundled;
  s.remoteAddress = remoteAddress_->text().trimmed();
  s.remoteToken = remoteToken_->text().trimmed();
  s.remoteTokenFromFile = tokenFromFile_->isChecked();
  s.remoteTokenFile = remoteTokenFile_->text().trimmed();
  s.remoteCaFile = remoteCaFile_->text().trimmed();
  s.openAiUrl = openAiUrl_->text().trimmed();
  s.openAiModel = openAiModel_->text().trimmed();
  s.apiKey = apiKey_->text();
  s.storeKeyInFile = !storeInFile_->isHidden() && storeInFile_->isChecked();
  s.theme = theme_->currentData().toString();
  return s;
}

}  // namespace tidelane::ui
