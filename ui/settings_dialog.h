// SettingsDialog: where chats go. The bundled router (default), a remote Tidelane router
// (HOST:PORT and its bearer token, pasted into a masked field and kept like the API key, or
// read from a file an administrator provisions) or an OpenAI-compatible endpoint (URL, model,
// API key). Under the token and the key, a line says where they will be kept (the system
// keychain, or, when no keychain service is running, this session only); only then is the
// explicit opt-in "store them in a file readable only by me" offered, with a warning.
// "Manage models…" asks for the model manager. Nothing here stores anything: the app reads
// values() on accept.
//
// Threading: GUI thread only.
#pragma once

#include <QDialog>
#include <QString>

class QButtonGroup;
class QCheckBox;
class QComboBox;
class QLineEdit;
class QRadioButton;

namespace tidelane::ui {

struct EndpointSettings {
  enum class Kind { Bundled, RemoteRouter, OpenAiCompatible };
  Kind kind = Kind::Bundled;
  QString remoteAddress;             // HOST:PORT of a remote tidelane-router
  QString remoteToken;               // its bearer token, pasted; never stored by the dialog
  bool remoteTokenFromFile = false;  // read the token from remoteTokenFile instead
  QString remoteTokenFile;           // file with its bearer token
  QString remoteCaFile;              // PEM CA for its TLS certificate; empty: plaintext
  QString openAiUrl;                 // e.g. http://127.0.0.1:8080 or https://api.example.com/v1
  QString openAiModel;               // empty: the endpoint's default
  QString apiKey;                    // never stored by the dialog
  QString keyStorageNote;            // where the key is kept, in words (from the app)
  bool keychainMissing = false;      // no keychain service: offer the file opt-in
  bool storeKeyInFile = false;       // the user's explicit opt-in (0600 file)
  QString theme = QStringLiteral("system");  // appearance: "system", "light" or "dark"
};

class SettingsDialog : public QDialog {
  Q_OBJECT

 public:
  explicit SettingsDialog(const EndpointSettings& current, QWidget* parent = nullptr);

  EndpointSettings values() const;

 signals:
  // "Manage models…": the app opens the model manager over this dialog.
  void manageModelsRequested();

 private:
  void updateEnabled();

  QRadioButton* bundled_;
  QRadioButton* remote_;
  QRadioButton* openAi_;
  QLineEdit* remoteAddress_;
  QRadioButton* tokenInKeychain_;
  QRadioButton* tokenFromFile_;
  QLineEdit* remoteToken_;
  QLineEdit* remoteTokenFile_;
  QLineEdit* remoteCaFile_;
  QLineEdit* openAiUrl_;
  QLineEdit* openAiModel_;
  QLineEdit* apiKey_;
  QCheckBox* storeInFile_;
  QComboBox* theme_;
};

}  // namespace tidelane::ui
