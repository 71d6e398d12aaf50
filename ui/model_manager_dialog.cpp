#include "ui/model_manager_dialog.h"

#include <QApplication>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QStyledItemDelegate>
#include <QTableView>
#include <QVBoxLayout>

#include "ui/model_catalog.h"

namespace tidelane::ui {
namespace {

// Draws a transfer's Status cell as a progress bar carrying the status text.
class ProgressDelegate : public QStyledItemDelegate {
 public:
  using QStyledItemDelegate::QStyledItemDelegate;

  void paint(QPainter* painter, const QStyleOptionViewItem& option,
             const QModelIndex& index) const override {
    const int progress = index.data(ModelCatalog::ProgressRole).toInt();
    if (progress < 0) {
      QStyledItemDelegate::paint(painter, option, index);
      return;
    }
    QStyleOptionProgressBar bar;
    bar.rect = option.rect.adjusted(2, 2, -2, -2);
    bar.minimum = 0;
    bar.maximum = 100;
    bar.progress = progress;
    bar.text = index.data().toString();
    bar.textVisible = true;
    bar.state = option.state | QStyle::State_Horizontal;
    const QWidget* w = option.widget;
    (w ? w->style() : QApplication::style())->drawControl(QStyle::CE_ProgressBar, &bar, painter, w);
  }
};

}  // namespace

ModelManagerDialog::ModelManagerDialog(ModelCatalog* catalog, QWidget* parent)
    : QDialog(parent),
      catalog_(catalog),
      table_(new QTableView(this)),
      use_(new QPushButton(tr("&Use this model"), this)),
      import_(new QPushButton(tr("&Import file…"), this)),
      delete_(new QPushButton(tr("&Delete…"), this)),
      pause_(new QPushButton(tr("&Pause"), this)),
      resume_(new QPushButton(tr("&Resume"), this)),
      cancel_(new QPushButton(tr("&Cancel transfer"), this)),
      url_(new QLineEdit(this)),
      sha_(new QLineEdit(this)),
      download_(new QPushButton(tr("Do&wnload"), this)),
      message_(new QLabel(this)) {
  setWindowTitle(tr("Models"));
  setObjectName(QStringLiteral("modelManagerDialog"));
  resize(900, 480);

  table_->setObjectName(QStringLiteral("modelTable"));
  table_->setAccessibleName(tr("Models"));
  table_->setModel(catalog_);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->verticalHeader()->hide();
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setSectionResizeMode(ModelCatalog::StatusColumn,
                                                   QHeaderView::Stretch);
  table_->setItemDelegateForColumn(ModelCatalog::StatusColumn, new ProgressDelegate(table_));

  const struct {
    QPushButton* button;
    const char* name;
    QString accessible;
  } buttons[] = {
      {use_, "useModel", tr("Use this model")},
      {import_, "importModel", tr("Import a model file")},
      {delete_, "deleteModel", tr("Delete the selected model")},
      {pause_, "pauseTransfer", tr("Pause the selected download")},
      {resume_, "resumeTransfer", tr("Resume the selected download")},
      {cancel_, "cancelTransfer", tr("Cancel the selected transfer")},
      {download_, "startDownload", tr("Download the model")},
  };
  for (const auto& b : buttons) {
    b.button->setObjectName(QLatin1String(b.name));
    b.button->setAccessibleName(b.accessible);
    b.button->setAutoDefault(false);
  }
  use_->setToolTip(tr("Restart the bundled worker on the selected model"));
  url_->setObjectName(QStringLiteral("downloadUrl"));
  url_->setAccessibleName(tr("Download link"));
  url_->setPlaceholderText(tr("https://huggingface.co/ORG/REPO/blob/main/MODEL.gguf"));
  sha_->setObjectName(QStringLiteral("downloadSha256"));
  sha_->setAccessibleName(tr("Expected SHA-256 (optional)"));
  sha_->setPlaceholderText(tr("optional: the file's SHA-256, as published with it"));
  message_->setObjectName(QStringLiteral("modelMessage"));
  message_->setAccessibleName(tr("Model manager message"));
  message_->setWordWrap(true);
  message_->setTextInteractionFlags(Qt::TextSelectableByMouse);

  auto* actions = new QHBoxLayout;
  for (auto* b : {use_, import_, delete_}) actions->addWidget(b);
  actions->addStretch(1);
  for (auto* b : {pause_, resume_, cancel_}) actions->addWidget(b);

  auto* downloadBox = new QGroupBox(tr("Download from a link"), this);
  auto* form = new QFormLayout(downloadBox);
  form->addRow(tr("&Link:"), url_);
  auto* shaRow = new QHBoxLayout;
  shaRow->addWidget(sha_, 1);
  shaRow->addWidget(download_);
  auto* shaLabel = new QLabel(tr("&SHA-256:"), this);
  shaLabel->setBuddy(sha_);  // a row holding a layout gets no buddy by itself
  form->addRow(shaLabel, shaRow);

  auto* close = new QDialogButtonBox(QDialogButtonBox::Close, this);
  connect(close, &QDialogButtonBox::rejected, this, &QDialog::reject);

  auto* layout = new QVBoxLayout(this);
  layout->addWidget(new QLabel(tr("Models the bundled worker can run:"), this));
  layout->addWidget(table_, 1);
  layout->addLayout(actions);
  layout->addWidget(downloadBox);
  layout->addWidget(message_);
  layout->addWidget(close);

  connect(use_, &QPushButton::clicked, this, [this] { catalog_->use(currentRow()); });
  connect(pause_, &QPushButton::clicked, this, [this] { catalog_->pause(currentRow()); });
  connect(resume_, &QPushButton::clicked, this, [this] { catalog_->resume(currentRow()); });
  connect(cancel_, &QPushButton::clicked, this, [this] { catalog_->cancel(currentRow()); });
  connect(import_, &QPushButton::clicked, this, &ModelManagerDialog::importFile);
  connect(delete_, &QPushButton::clicked, this, &ModelManagerDialog::deleteSelected);
  connect(download_, &QPushButton::clicked, this, &ModelManagerDialog::download);
  connect(url_, &QLineEdit::returnPressed, this, &ModelManagerDialog::download);
  connect(url_, &QLineEdit::textChanged, this, &ModelManagerDialog::updateButtons);
  connect(catalog_, &ModelCatalog::message, this, &ModelManagerDialog::showMessage);
  connect(table_->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
          &ModelManagerDialog::updateButtons);
  connect(catalog_, &QAbstractItemModel::dataChanged, this, &ModelManagerDialog::updateButtons);
  connect(catalog_, &QAbstractItemModel::modelReset, this, &ModelManagerDialog::updateButtons);
  if (catalog_->rowCount() > 0) table_->selectRow(0);
  updateButtons();
}

int ModelManagerDialog::currentRow() const {
  const QModelIndex current = table_->selectionModel()->currentIndex();
  return current.isValid() ? current.row() : -1;
}

void ModelManagerDialog::updateButtons() {
  const int row = currentRow();
  const int actions = row < 0 ? 0 : catalog_->index(row, 0).data(ModelCatalog::ActionsRole).toInt();
  use_->setEnabled(actions & ModelCatalog::CanUse);
  delete_->setEnabled(actions & ModelCatalog::CanDelete);
  pause_->setEnabled(actions & ModelCatalog::CanPause);
  resume_->setEnabled(actions & ModelCatalog::CanResume);
  cancel_->setEnabled(actions & ModelCatalog::CanCancel);
  download_->setEnabled(!url_->text().trimmed().isEmpty());
}

void ModelManagerDialog::showMessage(const QString& text, bool isError) {
  message_->setText(text);
  message_->setProperty("isError", isError);
  message_->setStyleSheet(isError ? QStringLiteral("color: #c62828; font-weight: bold;")
                                  : QString());
}

void ModelManagerDialog::importFile() {
  const QString path = QFileDialog::getOpenFileName(this, tr("Import a GGUF model"), QString(),
                                                    tr("GGUF models (*.gguf);;All files (*)"));
  if (!path.isEmpty()) catalog_->importFile(path);
}

void ModelManagerDialog::deleteSelected() {
  const int row = currentRow();
  if (row < 0) return;
  const QString name = catalog_->index(row, ModelCatalog::NameColumn).data().toString();
  const auto answer = QMessageBox::question(
      this, tr("Delete model"),
      tr("Delete %1? The file is removed from disk and cannot be recovered.").arg(name),
      QMessageBox::Yes | QMessageBox::Cancel, QMessageBox::Cancel);
  if (answer == QMessageBox::Yes) catalog_->remove(row);
}

void ModelManagerDialog::download() {
  const QString url = url_->text().trimmed();
  if (url.isEmpty()) return;
  catalog_->download(url, sha_->text().trimmed());
  if (!message_->property("isError").toBool()) {
    url_->clear();
    sha_->clear();
  }
}

}  // namespace tidelane::ui
