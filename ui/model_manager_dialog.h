// ModelManagerDialog: the models the bundled worker can run (a ModelCatalog shown as a table:
// name, architecture, quantisation, context length, parameters, size, status), with "Use this
// model", "Import file…", "Delete…" (after a confirmation), a download form (a URL, e.g. a
// Hugging Face file link, and an optional SHA-256), and Pause / Resume / Cancel for the
// transfer selected, whose progress is drawn in its Status cell. What the catalog says back
// (done, refused and why) is shown under the table. The dialog holds no logic: every request
// goes to the catalog.
//
// Threading: GUI thread only.
#pragma once

#include <QDialog>

class QLabel;
class QLineEdit;
class QPushButton;
class QTableView;

namespace tidelane::ui {

class ModelCatalog;

class ModelManagerDialog : public QDialog {
  Q_OBJECT

 public:
  // `catalog` must outlive the dialog.
  explicit ModelManagerDialog(ModelCatalog* catalog, QWidget* parent = nullptr);

  QTableView* table() { return table_; }

 public slots:
  void showMessage(const QString& text, bool isError);

 private:
  int currentRow() const;
  void updateButtons();
  void importFile();
  void deleteSelected();
  void download();

  ModelCatalog* catalog_;
  QTableView* table_;
  QPushButton* use_;
  QPushButton* import_;
  QPushButton* delete_;
  QPushButton* pause_;
  QPushButton* resume_;
  QPushButton* cancel_;
  QLineEdit* url_;
  QLineEdit* sha_;
  QPushButton* download_;
  QLabel* message_;
};

}  // namespace tidelane::ui
