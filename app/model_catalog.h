// ModelLibraryCatalog: ui::ModelCatalog over a ModelLibrary: one row per installed model
// (bundled first), then one per transfer. use() does not restart anything itself: it emits
// modelChosen() and the app restarts the bundled worker and remembers the choice.
//
// Threading: GUI thread only.
#pragma once

#include "ui/model_catalog.h"

namespace tidelane::app {

class ModelLibrary;
class ModelTransfer;

class ModelLibraryCatalog : public ui::ModelCatalog {
  Q_OBJECT

 public:
  explicit ModelLibraryCatalog(ModelLibrary* library, QObject* parent = nullptr);

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation,
                      int role = Qt::DisplayRole) const override;

  void importFile(const QString& path) override;
  void download(const QString& url, const QString& sha256) override;
  void use(int row) override;
  void remove(int row) override;
  void pause(int row) override;
  void resume(int row) override;
  void cancel(int row) override;

 signals:
  void modelChosen(const QString& path);

 private:
  ModelTransfer* transferAt(int row) const;
  void reset();

  ModelLibrary* library_;
};

}  // namespace tidelane::app
