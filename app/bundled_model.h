// Where the bundled default model is: installed beside the app (../share/tidelane/models), or
// in the source tree of a development build. Empty when neither has it.
#pragma once

#include <QString>

namespace tidelane::app {

QString BundledModelPath(const QString& appDir);

}  // namespace tidelane::app
