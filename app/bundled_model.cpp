#include "app/bundled_model.h"

#include <QDir>
#include <QFileInfo>

namespace tidelane::app {

QString BundledModelPath(const QString& appDir) {
  const QString name = QStringLiteral("tidelane-guide.gguf");
  const QStringList candidates = {
      QDir(appDir).filePath(QStringLiteral("../share/tidelane/models/") + name),
#ifdef TIDELANE_SOURCE_MODELS_DIR
      QDir(QStringLiteral(TIDELANE_SOURCE_MODELS_DIR)).filePath(name),
#endif
  };
  for (const QString& path : candidates) {
    if (QFileInfo(path).isFile()) return QFileInfo(path).canonicalFilePath();
  }
  return {};
}

}  // namespace tidelane::app
