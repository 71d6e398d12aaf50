// AppSettings: where chats go and how the bundled services run, stored with QSettings.
// Secrets are never stored here: a remote router's token is read from a file the user
// names, and an OpenAI-compatible endpoint's API key is held by the AppController for the
// session only (the keychain takes over with the chat-app issue).
#pragma once

#include <QString>

namespace tidelane::app {

struct AppSettings {
  enum class Endpoint { Bundled, RemoteRouter, OpenAiCompatible };

  Endpoint endpoint = Endpoint::Bundled;
  QString remoteAddress;    // HOST:PORT of a remote tidelane-router
  QString remoteTokenFile;  // file holding that router's bearer token
  QString openAiUrl;        // base URL of an OpenAI-compatible endpoint
  QString openAiModel;      // "model" sent to it (empty: the endpoint's default)
  QString workerProfile = QStringLiteral("mid");
  // The bundled worker's model (a GGUF file); empty: the synthetic engine. Not persisted yet:
  // the executable picks the bundled default model (main.cpp) until the model manager lands.
  QString modelPath;

  static AppSettings load();
  void save() const;
};

}  // namespace tidelane::app
