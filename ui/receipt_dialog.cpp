#include "ui/receipt_dialog.h"

#include <QApplication>
#include <QClipboard>
#include <QDialogButtonBox>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>

namespace tidelane::ui {

ReceiptDialog::ReceiptDialog(ReceiptBadge badge, const QString& problem, const QStringList& fields,
                             const QString& receiptJson, QWidget* parent)
    : QDialog(parent) {
  setWindowTitle(tr("Receipt"));
  auto* layout = new QVBoxLayout(this);
  verdict_ = new QLabel(this);
  verdict_->setWordWrap(true);
  verdict_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  if (badge == ReceiptBadge::Verified) {
    verdict_->setText(
        tr("✓ This answer's receipt verifies: the worker that computed it signed "
           "what is below, the router countersigned it, and the answer shown is "
           "the one signed."));
  } else {
    verdict_->setText(tr("✗ This answer's receipt does not verify: %1").arg(problem));
  }
  verdict_->setAccessibleName(tr("Receipt verdict"));
  layout->addWidget(verdict_);

  table_ = new QTableWidget(static_cast<int>(fields.size()), 2, this);
  table_->setHorizontalHeaderLabels({tr("Signed field"), tr("Value")});
  table_->verticalHeader()->hide();
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setAccessibleName(tr("Signed fields"));
  for (int row = 0; row < fields.size(); ++row) {
    const QString& line = fields[row];
    const auto colon = line.indexOf(QStringLiteral(": "));
    table_->setItem(row, 0, new QTableWidgetItem(line.left(colon)));
    table_->setItem(row, 1, new QTableWidgetItem(colon < 0 ? QString() : line.mid(colon + 2)));
  }
  table_->resizeColumnToContents(0);
  layout->addWidget(table_);

  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close, this);
  auto* copy = buttons->addButton(tr("Copy receipt JSON"), QDialogButtonBox::ActionRole);
  copy->setToolTip(tr("Check it yourself with: tidelane-verify RECEIPT.json"));
  connect(copy, &QPushButton::clicked, this,
          [receiptJson] { QApplication::clipboard()->setText(receiptJson); });
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  layout->addWidget(buttons);
  resize(720, 520);
}

}  // namespace tidelane::ui
