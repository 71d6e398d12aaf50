// ReceiptStatus: what the UI shows of an answer's signed receipt (the badge, and the signed
// fields behind it). The UI never verifies anything itself (it may not include router/): the
// app supplies a ReceiptChecker built on router/receipt, and the model asks it.
//
// Threading: a checker is called on the GUI thread and must be fast (it is: two Ed25519
// verifications and a few hashes).
#pragma once

#include <QList>
#include <QPair>
#include <QString>
#include <functional>

namespace tidelane::ui {

enum class ReceiptBadge {
  None,      // the answer came without a receipt: nothing is shown
  Verified,  // both signatures hold and the answer shown is the one signed
  Invalid,   // there is a receipt, and some check failed (see problem)
};

struct ReceiptStatus {
  ReceiptBadge badge = ReceiptBadge::None;
  QString problem;                        // which check failed, for a person; empty when verified
  QList<QPair<QString, QString>> fields;  // what was signed, "field" → "value", in a readable order
};

// Checks `receiptJson` (empty: no receipt) against the answer text shown.
using ReceiptChecker =
    std::function<ReceiptStatus(const QString& receiptJson, const QString& answerText)>;

}  // namespace tidelane::ui
