// ReceiptDialog: what an answer's receipt says, opened from its badge: the verdict (and the
// failed check, if any), every signed field, and a button that copies the receipt's JSON for
// `tidelane-verify`. It shows what the model says and decides nothing.
//
// Threading: GUI thread only.
#pragma once

#include <QDialog>

#include "ui/receipt_status.h"

class QLabel;
class QTableWidget;

namespace tidelane::ui {

class ReceiptDialog : public QDialog {
  Q_OBJECT

 public:
  // `fields` are "field: value" lines (ConversationModel::ReceiptFieldsRole).
  ReceiptDialog(ReceiptBadge badge, const QString& problem, const QStringList& fields,
                const QString& receiptJson, QWidget* parent = nullptr);

  QLabel* verdict() const { return verdict_; }
  QTableWidget* table() const { return table_; }

 private:
  QLabel* verdict_;
  QTableWidget* table_;
};

}  // namespace tidelane::ui
