#include "ui/settings_dialog.h"

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
      remoteTokenFile_(new QLineEdit(current.remoteTokenFile, this)),
      openAiUrl_(new QLineEdit(current.openAiUrl, this)),
      openAiModel_(new QLineEdit(current.openAiModel, this)),
      apiKey_(new QLineEdit(current.apiKey, this)) {
  setWindowTitle(tr("Settings"));
  setObjectName(QStringLiteral("settingsDialog"));
  bundled_->setObjectName(QStringLiteral("endpointBundled"));
  remote_->setObjectName(QStringLiteral("endpointRemote"));
  openAi_->setObjectName(QStringLiteral("endpointOpenAi"));
  remoteAddress_->setObjectName(QStringLiteral("remoteAddress"));
  remoteAddress_->setAccessibleName(tr("Remote router address"));
  remoteAddress_->setPlaceholderText(tr("host:port"));
  remoteTokenFile_->setObjectName(QStringLiteral("remoteTokenFile"));
  remoteTokenFile_->setAccessibleName(tr("Remote router token file"));
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
  remoteForm->addRow(tr("&Token file:"), remoteTokenFile_);

  auto* openAiBox = new QGroupBox(tr("OpenAI-compatible endpoint"), this);
  auto* openAiForm = new QFormLayout(openAiBox);
  openAiForm->addRow(tr("&URL:"), openAiUrl_);
  openAiForm->addRow(tr("&Model:"), openAiModel_);
  openAiForm->addRow(tr("API &key:"), apiKey_);
  auto* note = new QLabel(tr("stored for this session only (keychain support comes next)"), this);
  note->setObjectName(QStringLiteral("apiKeyNote"));
  note->setWordWrap(true);
  openAiForm->addRow(QString(), note);

  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
  connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);

  auto* layout = new QVBoxLayout(this);
  layout->addWidget(new QLabel(tr("Where chats go:"), this));
  layout->addWidget(bundled_);
  layout->addWidget(remote_);
  layout->addWidget(remoteBox);
  layout->addWidget(openAi_);
  layout->addWidget(openAiBox);
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
  updateEnabled();
}

void SettingsDialog::updateEnabled() {
  for (auto* w : {remoteAddress_, remoteTokenFile_}) w->setEnabled(remote_->isChecked());
  for (auto* w : {openAiUrl_, openAiModel_, apiKey_}) w->setEnabled(openAi_->isChecked());
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
  s.remoteTokenFile = remoteTokenFile_->text().trimmed();
  s.openAiUrl = openAiUrl_->text().trimmed();
  s.openAiModel = openAiModel_->text().trimmed();
  s.apiKey = apiKey_->text();
  return s;
}

}  // namespace tidelane::ui
