// WelcomeDialog: the first-run screen. Says in a few plain sentences what Tidelane runs out
// of the box (a small guide model, offline, on this computer: it answers questions about
// Tidelane and is not a general assistant), shows the bundled model's details, and offers
// the ways on: "Get a larger model…" (the model manager), "Connect to an endpoint…" (the
// settings) and "Start chatting". The app shows it once and from Help → Welcome.
#pragma once

#include <QDialog>

namespace tidelane::ui {

// What the screen says about the bundled model (the app reads it from the GGUF file).
struct BundledModelDetails {
  QString name;
  QString parameters;    // "3.6M"
  QString size;          // "7.4 MB"
  QString architecture;  // "llama"
  QString quantisation;  // "F32"
  QString contextLength;
  QString path;
  QString problem;  // non-empty: the model is missing or unreadable, and why
};

class WelcomeDialog : public QDialog {
  Q_OBJECT

 public:
  explicit WelcomeDialog(const BundledModelDetails& model, QWidget* parent = nullptr);

 signals:
  // After the dialog closed: the user asked for the model manager, or for the settings.
  void largerModelRequested();
  void endpointRequested();
};

}  // namespace tidelane::ui
