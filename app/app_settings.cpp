#include "app/app_settings.h"

#include <QSettings>

namespace tidelane::app {

AppSettings AppSettings::load() {
  QSettings s;
  AppSettings a;
  a.endpoint = s.value(QStringLiteral("endpoint/kind")).toString() == QLatin1String("remote")
                   ? Endpoint::RemoteRouter
                   : Endpoint::Bundled;
  a.remoteAddress = s.value(QStringLiteral("endpoint/remoteAddress")).toString();
  a.remoteTokenFile = s.value(QStringLiteral("endpoint/remoteTokenFile")).toString();
  a.workerProfile = s.value(QStringLiteral("bundled/workerProfile"), a.workerProfile).toString();
  return a;
}

void AppSettings::save() const {
  QSettings s;
  s.setValue(QStringLiteral("endpoint/kind"), endpoint == Endpoint::RemoteRouter
                                                  ? QStringLiteral("remote")
                                                  : QStringLiteral("bundled"));
  s.setValue(QStringLiteral("endpoint/remoteAddress"), remoteAddress);
  s.setValue(QStringLiteral("endpoint/remoteTokenFile"), remoteTokenFile);
  s.setValue(QStringLiteral("bundled/workerProfile"), workerProfile);
}

}  // namespace tidelane::app
