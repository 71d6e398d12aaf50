#include "ui/conversation_settings.h"

#include <QCoreApplication>
#include <QJsonDocument>

namespace tidelane::ui {
namespace {

QString tr(const char* text) {
  return QCoreApplication::translate("tidelane::ui::ConversationSettings", text);
}

const QString kPreset = QStringLiteral("preset");
const QString kSystem = QStringLiteral("systemPrompt");
const QString kTemperature = QStringLiteral("temperature");
const QString kTopP = QStringLiteral("topP");
const QString kMaxTokens = QStringLiteral("maxTokens");

}  // namespace

QList<PromptPreset> builtInPresets() {
  return {
      {QStringLiteral("helpful"), tr("Helpful assistant"),
       tr("You are a helpful, friendly assistant. Answer accurately and say so when you are not "
          "sure."),
       true},
      {QStringLiteral("concise"), tr("Concise"),
       tr("Answer as briefly as possible: one or two sentences, no preamble."), true},
      {QStringLiteral("teacher"), tr("Explain like a teacher"),
       tr("Explain step by step, as a patient teacher would to a curious student, with a short "
          "example."),
       true},
  };
}

QJsonObject ConversationSettings::toJson() const {
  QJsonObject o;
  if (presetId != QLatin1String("none") || !systemPrompt.isEmpty()) {
    o.insert(kPreset, presetId);
    o.insert(kSystem, systemPrompt);
  }
  if (temperature >= 0) o.insert(kTemperature, temperature);
  if (topP >= 0) o.insert(kTopP, topP);
  if (maxTokens > 0) o.insert(kMaxTokens, maxTokens);
  return o;
}

QString ConversationSettings::toJsonText() const {
  return QString::fromUtf8(QJsonDocument(toJson()).toJson(QJsonDocument::Compact));
}

ConversationSettings ConversationSettings::fromJson(const QJsonObject& o, const QString& model) {
  ConversationSettings s;
  s.model = model;
  s.systemPrompt = o.value(kSystem).toString();
  s.presetId = o.value(kPreset).toString(s.systemPrompt.isEmpty() ? QStringLiteral("none")
                                                                  : QStringLiteral("custom"));
  const double t = o.value(kTemperature).toDouble(-1);
  s.temperature = t >= 0 && t <= 2 ? t : -1;
  const double p = o.value(kTopP).toDouble(-1);
  s.topP = p >= 0 && p <= 1 ? p : -1;
  const int m = o.value(kMaxTokens).toInt(0);
  s.maxTokens = m > 0 ? m : 0;
  return s;
}

ConversationSettings ConversationSettings::fromJsonText(const QString& json, const QString& model) {
  return fromJson(QJsonDocument::fromJson(json.toUtf8()).object(), model);
}

GenerationOptions ConversationSettings::options() const {
  GenerationOptions g;
  g.model = model;
  g.temperature = temperature;
  g.topP = topP;
  g.maxTokens = maxTokens;
  return g;
}

QList<ChatTurn> ConversationSettings::withSystemPrompt(QList<ChatTurn> turns) const {
  if (!systemPrompt.trimmed().isEmpty()) {
    turns.prepend({QStringLiteral("system"), systemPrompt});
  }
  return turns;
}

}  // namespace tidelane::ui
