// GenerationBar: the compact row above the composer that shows and edits the conversation's
// settings: system-prompt preset, model (what the endpoint lists), temperature, top-p and
// max tokens ("Default" leaves each to the endpoint). Its "⋯" menu writes a custom system
// prompt, saves the current prompt as a preset, or makes these settings the default for new
// chats. It only forwards intent (settingsEdited, presetSaved, defaultsChosen): the chat view
// keeps the settings with the conversation and the app saves presets and defaults.
#pragma once

#include <QWidget>

#include "ui/conversation_settings.h"

class QComboBox;
class QDoubleSpinBox;
class QSpinBox;
class QToolButton;

namespace tidelane::ui {

class GenerationBar : public QWidget {
  Q_OBJECT

 public:
  explicit GenerationBar(QWidget* parent = nullptr);

  ConversationSettings settings() const { return settings_; }
  // Shows `s` without emitting settingsEdited.
  void setSettings(const ConversationSettings& s);
  // Built-in presets first, then the user's.
  void setPresets(const QList<PromptPreset>& userPresets);
  QList<PromptPreset> presets() const { return presets_; }
  // The models the endpoint serves; `error` explains an empty list (shown as a tooltip).
  void setModels(const QStringList& models, const QString& error = {});

 public slots:
  // Uses preset `id` ("none", a built-in or a user preset).
  void choosePreset(const QString& id);
  void setCustomPrompt(const QString& text);
  void editCustomPrompt();
  void savePromptAsPreset();

 signals:
  void settingsEdited(const tidelane::ui::ConversationSettings& settings);
  void presetSaved(const tidelane::ui::PromptPreset& preset);
  void defaultsChosen(const tidelane::ui::ConversationSettings& settings);
  // The model list was opened: the view asks the endpoint again.
  void modelsWanted();

 private:
  void fillPresets();
  void fillModels();
  void show(const ConversationSettings& s);
  void edited();

  ConversationSettings settings_;
  QList<PromptPreset> presets_;
  QStringList models_;
  QComboBox* preset_;
  QComboBox* model_;
  QDoubleSpinBox* temperature_;
  QDoubleSpinBox* topP_;
  QSpinBox* maxTokens_;
  QToolButton* more_;
  bool updating_ = false;
};

}  // namespace tidelane::ui
