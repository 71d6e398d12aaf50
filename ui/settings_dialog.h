// SettingsDialog: where chats go. The bundled router (default), a remote Tidelane router
// (HOST:PORT and a file holding its token) or an OpenAI-compatible endpoint (URL, model,
// API key). The key is held for this session only, and the dialog says so (the system
// keychain comes next); nothing here stores anything: the app reads values() on accept.
//
// Threading: GUI thread only.
#pragma once

#include <QDialog>
#include <QString>

class QButtonGroup;
class QLineEdit;
class QRadioButton;

namespace tidelane::ui {

struct EndpointSettings {
  enum class Kind { Bundled, RemoteRouter, OpenAiCompatible };
  Kind kind = Kind::Bundled;
  QString remoteAddress;    // HOST:PORT of a remote tidelane-router
  QString remoteTokenFile;  // file with its bearer token
  QString openAiUrl;        // e.g. http://127.0.0.1:8080 or https://api.example.com/v1
  QString openAiModel;      // empty: the endpoint's default
  QString apiKey;           // held in memory only
};

class SettingsDialog : public QDialog {
  Q_OBJECT

 public:
  explicit SettingsDialog(const EndpointSettings& current, QWidget* parent = nullptr);

  EndpointSettings values() const;

 private:
  void updateEnabled();

  QRadioButton* bundled_;
  QRadioButton* remote_;
  QRadioButton* openAi_;
  QLineEdit* remoteAddress_;
  QLineEdit* remoteTokenFile_;
  QLineEdit* openAiUrl_;
  QLineEdit* openAiModel_;
  QLineEdit* apiKey_;
};

}  // namespace tidelane::ui
