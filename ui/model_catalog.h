// ModelCatalog: the table the model manager shows (installed models, then downloads and
// imports in progress) and the requests the user can make of it. The app implements it over
// its model library (app/model_catalog.h); the dialog only shows it and forwards intent.
//
// Threading: GUI thread only.
#pragma once

#include <QAbstractTableModel>
#include <QString>

namespace tidelane::ui {

class ModelCatalog : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column {
    NameColumn,
    ArchitectureColumn,
    QuantisationColumn,
    ContextColumn,
    ParametersColumn,
    SizeColumn,
    StatusColumn,
    ColumnCount
  };
  enum Role {
    ProgressRole = Qt::UserRole + 1,  // int 0..100 for a transfer with a known size, else -1
    ActionsRole,                      // Actions allowed on the row (int)
    IsErrorRole,                      // bool: the row is a broken file or a failed transfer
    PathRole,                         // the model file (installed rows)
  };
  enum Action {
    CanUse = 1,
    CanDelete = 2,
    CanPause = 4,
    CanResume = 8,
    CanCancel = 16,
  };

  using QAbstractTableModel::QAbstractTableModel;

  // Each request answers with message(); a refused one says why with isError = true.
  virtual void importFile(const QString& path) = 0;
  virtual void download(const QString& url, const QString& sha256) = 0;
  virtual void use(int row) = 0;
  virtual void remove(int row) = 0;
  virtual void pause(int row) = 0;
  virtual void resume(int row) = 0;
  virtual void cancel(int row) = 0;

 signals:
  void message(const QString& text, bool isError);
};

}  // namespace tidelane::ui
