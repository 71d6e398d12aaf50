#include "app/model_catalog.h"

#include <QFileInfo>
#include <QUrl>

#include "app/model_library.h"

namespace tidelane::app {

ModelLibraryCatalog::ModelLibraryCatalog(ModelLibrary* library, QObject* parent)
    : ui::ModelCatalog(parent), library_(library) {
  connect(library_, &ModelLibrary::modelsChanged, this, &ModelLibraryCatalog::reset);
  connect(library_, &ModelLibrary::transferAdded, this, &ModelLibraryCatalog::reset);
  connect(library_, &ModelLibrary::transferRemoved, this, &ModelLibraryCatalog::reset);
  connect(library_, &ModelLibrary::transferChanged, this, [this](ModelTransfer* t) {
    const int row = static_cast<int>(library_->models().size() + library_->transfers().indexOf(t));
    if (row < library_->models().size()) return;
    emit dataChanged(index(row, 0), index(row, ColumnCount - 1));
  });
}

void ModelLibraryCatalog::reset() {
  beginResetModel();
  endResetModel();
}

int ModelLibraryCatalog::rowCount(const QModelIndex& parent) const {
  if (parent.isValid()) return 0;
  return static_cast<int>(library_->models().size() + library_->transfers().size());
}

int ModelLibraryCatalog::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : ColumnCount;
}

ModelTransfer* ModelLibraryCatalog::transferAt(int row) const {
  const int i = row - static_cast<int>(library_->models().size());
  if (i < 0 || i >= library_->transfers().size()) return nullptr;
  return library_->transfers()[i];
}

QVariant ModelLibraryCatalog::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case NameColumn:
      return tr("Model");
    case ArchitectureColumn:
      return tr("Architecture");
    case QuantisationColumn:
      return tr("Quantisation");
    case ContextColumn:
      return tr("Context");
    case ParametersColumn:
      return tr("Parameters");
    case SizeColumn:
      return tr("Size");
    case StatusColumn:
      return tr("Status");
  }
  return {};
}

QVariant ModelLibraryCatalog::data(const QModelIndex& index, int role) const {
  if (!index.isValid()) return {};
  const int row = index.row();
  if (row < library_->models().size()) {
    const ModelInfo& m = library_->models()[row];
    const bool active = !library_->activeModel().isEmpty() && m.path == library_->activeModel();
    switch (role) {
      case PathRole:
        return m.path;
      case IsErrorRole:
        return !m.ok();
      case ProgressRole:
        return -1;
      case ActionsRole: {
        int a = 0;
        if (m.runnable() && !active) a |= CanUse;
        if (!m.bundled && !active) a |= CanDelete;
        return a;
      }
      case Qt::ToolTipRole:
        return !m.ok() ? m.error : !m.unsupported.isEmpty() ? m.unsupported : m.path;
      case Qt::DisplayRole:
      case Qt::AccessibleTextRole:
        switch (index.column()) {
          case NameColumn:
            return m.name == QFileInfo(m.fileName).completeBaseName()
                       ? m.fileName
                       : tr("%1 (%2)").arg(m.name, m.fileName);
          case ArchitectureColumn:
            return m.architecture;
          case QuantisationColumn:
            return m.quantisation;
          case ContextColumn:
            return m.contextLength > 0 ? QString::number(m.contextLength) : QString();
          case ParametersColumn:
            return m.parameterCount > 0 ? HumanCount(m.parameterCount) : QString();
          case SizeColumn:
            return HumanBytes(m.sizeBytes);
          case StatusColumn: {
            QStringList parts;
            if (!m.ok()) return m.error;
            if (!m.unsupported.isEmpty()) return m.unsupported;
            if (active) parts << tr("In use");
            if (m.bundled) parts << tr("Bundled");
            return parts.isEmpty() ? tr("Installed") : parts.join(QStringLiteral(", "));
          }
        }
        return {};
    }
    return {};
  }
  const ModelTransfer* t = transferAt(row);
  if (!t) return {};
  const bool isDownload = t->kind() == ModelTransfer::Kind::Download;
  switch (role) {
    case PathRole:
      return {};
    case IsErrorRole:
      return t->state() == ModelTransfer::State::Failed;
    case ProgressRole:
      if (t->state() != ModelTransfer::State::Running && t->state() != ModelTransfer::State::Paused)
        return -1;
      return t->total() > 0 ? static_cast<int>(t->received() * 100 / t->total()) : -1;
    case ActionsRole: {
      int a = CanCancel;
      if (t->canPause()) a |= CanPause;
      if (t->canResume()) a |= CanResume;
      return a;
    }
    case Qt::ToolTipRole:
      return t->error().isEmpty() ? t->source() : t->error();
    case Qt::DisplayRole:
    case Qt::AccessibleTextRole:
      switch (index.column()) {
        case NameColumn:
          return t->fileName();
        case SizeColumn:
          return t->total() >= 0 ? HumanBytes(t->total()) : QString();
        case StatusColumn: {
          const QString amount =
              t->total() > 0 ? tr("%1 of %2").arg(HumanBytes(t->received()), HumanBytes(t->total()))
                             : HumanBytes(t->received());
          switch (t->state()) {
            case ModelTransfer::State::Running:
              return isDownload ? tr("Downloading: %1").arg(amount)
                                : tr("Importing: %1").arg(amount);
            case ModelTransfer::State::Paused:
              return tr("Paused: %1").arg(amount);
            case ModelTransfer::State::Failed:
              return t->error();
            case ModelTransfer::State::Done:
              return tr("Done");
            case ModelTransfer::State::Cancelled:
              return tr("Cancelled");
          }
          return {};
        }
        default:
          return {};
      }
  }
  return {};
}

void ModelLibraryCatalog::importFile(const QString& path) {
  QString error;
  auto* import = library_->importFile(path, &error);
  if (!import) {
    emit message(error, true);
    return;
  }
  emit message(tr("Importing %1…").arg(import->fileName()), false);
  connect(import, &ModelTransfer::completed, this, [this](const QString& p) {
    emit message(tr("%1 was added to the library.").arg(QFileInfo(p).fileName()), false);
  });
  connect(import, &ModelTransfer::stateChanged, this, [this, import](ModelTransfer::State s) {
    if (s == ModelTransfer::State::Failed) emit message(import->error(), true);
  });
}

void ModelLibraryCatalog::download(const QString& url, const QString& sha256) {
  QString error;
  auto* d = library_->download(QUrl::fromUserInput(url.trimmed()), sha256, &error);
  if (!d) {
    emit message(error, true);
    return;
  }
  emit message(tr("Downloading %1…").arg(d->fileName()), false);
  connect(d, &ModelTransfer::completed, this, [this, d](const QString& p) {
    emit message(d->expectedSha256().isEmpty()
                     ? tr("%1 was downloaded and added to the library (SHA-256 %2).")
                           .arg(QFileInfo(p).fileName(), d->sha256())
                     : tr("%1 was downloaded, its SHA-256 matches, and it was added to the "
                          "library.")
                           .arg(QFileInfo(p).fileName()),
                 false);
  });
  connect(d, &ModelTransfer::stateChanged, this, [this, d](ModelTransfer::State s) {
    if (s == ModelTransfer::State::Failed) emit message(d->error(), true);
  });
}

void ModelLibraryCatalog::use(int row) {
  if (row < 0 || row >= library_->models().size()) return;
  const ModelInfo& m = library_->models()[row];
  if (!m.runnable()) {
    emit message(m.ok() ? m.unsupported : m.error, true);
    return;
  }
  emit modelChosen(m.path);
}

void ModelLibraryCatalog::remove(int row) {
  if (row < 0 || row >= library_->models().size()) return;
  const QString path = library_->models()[row].path;
  QString error;
  if (!library_->remove(path, &error)) {
    emit message(error, true);
    return;
  }
  emit message(tr("%1 was deleted.").arg(QFileInfo(path).fileName()), false);
}

void ModelLibraryCatalog::pause(int row) {
  if (auto* t = transferAt(row)) t->pause();
}

void ModelLibraryCatalog::resume(int row) {
  if (auto* t = transferAt(row)) t->resume();
}

void ModelLibraryCatalog::cancel(int row) {
  if (auto* t = transferAt(row)) {
    const QString name = t->fileName();
    t->cancel();
    emit message(tr("%1: cancelled, and its partial file removed.").arg(name), false);
  }
}

}  // namespace tidelane::app
