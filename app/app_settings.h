// AppSettings: where chats go and how the bundled services run, stored with QSettings.
// Secrets are never stored here: a remote router's token and an OpenAI-compatible endpoint's
// API key live in the keychain (SecretVault); only where a token file is, when the user
// provisions the router's token by file instead, is kept here.
#pragma once

#include <QList>
#include <QString>

#include "ui/conversation_settings.h"

namespace tidelane::app {

struct AppSettings {
  enum class Endpoint { Bundled, RemoteRouter, OpenAiCompatible };

  Endpoint endpoint = Endpoint::Bundled;
  QString remoteAddress;  // HOST:PORT of a remote tidelane-router
  // Where that router's bearer token comes from: the keychain (default; the user pastes it in
  // the settings), or a file the user names (e.g. /etc/tidelane/token, provisioned by an
  // administrator). A settings file from before the keychain held the token names only the
  // file: it keeps being read from there.
  bool remoteTokenFromFile = false;
  QString remoteTokenFile;  // that file, when remoteTokenFromFile
  QString remoteCaFile;     // PEM CA its TLS certificate chains to; empty: plaintext
  QString openAiUrl;        // base URL of an OpenAI-compatible endpoint
  QString openAiModel;      // "model" sent to it (empty: the endpoint's default)
  QString workerProfile = QStringLiteral("mid");
  // The bundled worker's model (a GGUF file); empty: the synthetic engine. Set by main.cpp
  // from --model, else the model chosen in the model manager, else the bundled default.
  QString modelPath;
  // The model last chosen in the model manager ("Use this model"); saved only by
  // rememberChosenModel(), so a one-off --model never becomes the default.
  QString chosenModelPath;
  // The user explicitly chose to keep API keys in a file readable only by them (no keychain).
  bool secretsInFile = false;
  // What a new chat starts with (system prompt, model, sampling), and the user's own presets.
  ui::ConversationSettings chatDefaults;
  QList<ui::PromptPreset> userPresets;
  // "system", "light" or "dark" (ui/theme.h).
  QString theme = QStringLiteral("system");
  // The first-run screen is due: true from load() until rememberWelcomeShown(). A default
  // AppSettings (tests, embedding) never shows it.
  bool showWelcome = false;

  static AppSettings load();
  void save() const;
  static void rememberChosenModel(const QString& path);
  static void rememberWelcomeShown();
  static void saveChatDefaults(const ui::ConversationSettings& defaults);
  static void saveUserPresets(const QList<ui::PromptPreset>& presets);
};

}  // namespace tidelane::app
