// ConversationSettings: how one conversation asks to be answered: a system prompt (from a
// preset or written by hand), the model, and the sampling settings. Kept per conversation in
// the store (the model in its own column, the rest as the JSON object of `settingsJson`), so
// reopening a chat, or importing it elsewhere, answers it the same way.
//
// Values left at their "default" (a negative temperature or top-p, 0 max tokens, an empty
// model) are not sent, so the endpoint's own defaults apply: a conversation stored before
// these settings existed ("{}") is answered exactly as it was then.
#pragma once

#include <QJsonObject>
#include <QList>
#include <QString>

#include "ui/chat_backend.h"

namespace tidelane::ui {

struct PromptPreset {
  QString id;  // "helpful", "concise", "teacher", "user:<name>"
  QString name;
  QString prompt;
  bool builtIn = false;
};

// The presets every install has, names through tr(). "none" (no system prompt) is not one of
// them: the bar offers it first.
QList<PromptPreset> builtInPresets();

struct ConversationSettings {
  QString presetId = QStringLiteral("none");  // "none", a preset id, or "custom"
  QString systemPrompt;                       // what is sent (the preset's text, or custom)
  QString model;                              // empty: the endpoint's default
  double temperature = -1;                    // < 0: the endpoint's default
  double topP = -1;                           // < 0: the endpoint's default
  int maxTokens = 0;                          // 0: the endpoint's default

  // The stored form (without the model, which has its own column). Unknown keys are ignored
  // and out-of-range values fall back to the default, so a hand-edited row cannot break a chat.
  QJsonObject toJson() const;
  QString toJsonText() const;
  static ConversationSettings fromJson(const QJsonObject& o, const QString& model = {});
  static ConversationSettings fromJsonText(const QString& json, const QString& model = {});

  GenerationOptions options() const;
  // `turns` with the system prompt first (when there is one).
  QList<ChatTurn> withSystemPrompt(QList<ChatTurn> turns) const;

  bool operator==(const ConversationSettings&) const = default;
};

}  // namespace tidelane::ui
