#include "app/app_settings.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSettings>

namespace tidelane::app {

AppSettings AppSettings::load() {
  QSettings s;
  AppSettings a;
  const QString kind = s.value(QStringLiteral("endpoint/kind")).toString();
  a.endpoint = kind == QLatin1String("remote")   ? Endpoint::RemoteRouter
               : kind == QLatin1String("openai") ? Endpoint::OpenAiCompatible
                                                 : Endpoint::Bundled;
  a.remoteAddress = s.value(QStringLiteral("endpoint/remoteAddress")).toString();
  a.remoteTokenFile = s.value(QStringLiteral("endpoint/remoteTokenFile")).toString();
  const QString source = s.value(QStringLiteral("endpoint/remoteTokenSource")).toString();
  // No source recorded: an older version, where the file was the only way; it keeps working.
  a.remoteTokenFromFile =
      source.isEmpty() ? !a.remoteTokenFile.isEmpty() : source == QLatin1String("file");
  a.remoteCaFile = s.value(QStringLiteral("endpoint/remoteCaFile")).toString();
  a.openAiUrl = s.value(QStringLiteral("endpoint/openAiUrl")).toString();
  a.openAiModel = s.value(QStringLiteral("endpoint/openAiModel")).toString();
  a.workerProfile = s.value(QStringLiteral("bundled/workerProfile"), a.workerProfile).toString();
  a.chosenModelPath = s.value(QStringLiteral("bundled/modelPath")).toString();
  a.secretsInFile = s.value(QStringLiteral("secrets/storeInFile"), false).toBool();
  a.chatDefaults = ui::ConversationSettings::fromJsonText(
      s.value(QStringLiteral("chat/defaults")).toString(),
      s.value(QStringLiteral("chat/defaultModel")).toString());
  const QJsonArray presets =
      QJsonDocument::fromJson(s.value(QStringLiteral("chat/presets")).toString().toUtf8()).array();
  for (const auto& v : presets) {
    const QJsonObject o = v.toObject();
    const QString name = o.value(QStringLiteral("name")).toString();
    const QString prompt = o.value(QStringLiteral("prompt")).toString();
    if (!name.isEmpty() && !prompt.isEmpty())
      a.userPresets.append({QStringLiteral("user:") + name, name, prompt, false});
  }
  a.theme = s.value(QStringLiteral("appearance/theme"), a.theme).toString();
  a.showWelcome = !s.value(QStringLiteral("app/welcomeShown"), false).toBool();
  return a;
}

void AppSettings::save() const {
  QSettings s;
  const QString kind = endpoint == Endpoint::RemoteRouter       ? QStringLiteral("remote")
                       : endpoint == Endpoint::OpenAiCompatible ? QStringLiteral("openai")
                                                                : QStringLiteral("bundled");
  s.setValue(QStringLiteral("endpoint/kind"), kind);
  s.setValue(QStringLiteral("endpoint/remoteAddress"), remoteAddress);
  s.setValue(QStringLiteral("endpoint/remoteTokenFile"), remoteTokenFile);
  s.setValue(QStringLiteral("endpoint/remoteTokenSource"),
             remoteTokenFromFile ? QStringLiteral("file") : QStringLiteral("keychain"));
  s.setValue(QStringLiteral("endpoint/remoteCaFile"), remoteCaFile);
  s.setValue(QStringLiteral("endpoint/openAiUrl"), openAiUrl);
  s.setValue(QStringLiteral("endpoint/openAiModel"), openAiModel);
  s.setValue(QStringLiteral("bundled/workerProfile"), workerProfile);
  s.setValue(QStringLiteral("secrets/storeInFile"), secretsInFile);
  s.setValue(QStringLiteral("appearance/theme"), theme);
}

void AppSettings::rememberWelcomeShown() {
  QSettings().setValue(QStringLiteral("app/welcomeShown"), true);
}

void AppSettings::saveChatDefaults(const ui::ConversationSettings& defaults) {
  QSettings s;
  s.setValue(QStringLiteral("chat/defaults"), defaults.toJsonText());
  s.setValue(QStringLiteral("chat/defaultModel"), defaults.model);
}

void AppSettings::saveUserPresets(const QList<ui::PromptPreset>& presets) {
  QJsonArray list;
  for (const auto& p : presets) {
    list.append(
        QJsonObject{{QStringLiteral("name"), p.name}, {QStringLiteral("prompt"), p.prompt}});
  }
  QSettings().setValue(QStringLiteral("chat/presets"),
                       QString::fromUtf8(QJsonDocument(list).toJson(QJsonDocument::Compact)));
}

void AppSettings::rememberChosenModel(const QString& path) {
  QSettings s;
  s.setValue(QStringLiteral("bundled/modelPath"), path);
}

}  // namespace tidelane::app
