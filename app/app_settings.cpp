#include "app/app_settings.h"

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
  a.openAiUrl = s.value(QStringLiteral("endpoint/openAiUrl")).toString();
  a.openAiModel = s.value(QStringLiteral("endpoint/openAiModel")).toString();
  a.workerProfile = s.value(QStringLiteral("bundled/workerProfile"), a.workerProfile).toString();
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
  s.setValue(QStringLiteral("endpoint/openAiUrl"), openAiUrl);
  s.setValue(QStringLiteral("endpoint/openAiModel"), openAiModel);
  s.setValue(QStringLiteral("bundled/workerProfile"), workerProfile);
}

}  // namespace tidelane::app
