// The app's side of receipts: turns the Receipt in a gRPC Done into the JSON document the
// history keeps (the same document GET /v1/receipts/{id} serves and tidelane-verify reads),
// and checks such a document for the badge, with router/receipt, the library every verifier
// uses. The UI sees only ui::ReceiptStatus.
//
// Threading: both functions are pure and thread-safe.
#pragma once

#include <QString>

#include "ui/receipt_status.h"

namespace tidelane::v1 {
class Receipt;
}

namespace tidelane::app {

// The receipt as a JSON document. A receipt whose payload is not even JSON still gives a
// document (one that names the defect), so the answer shows "invalid", not nothing.
QString receiptDocument(const v1::Receipt& receipt);

// The badge of `receiptJson` for the answer `answerText`: None for an empty document,
// Verified when every check holds and the answer is the one signed, else Invalid with the
// failed check. The fields are what was signed, whenever the payload could be read.
ui::ReceiptStatus checkReceipt(const QString& receiptJson, const QString& answerText);

}  // namespace tidelane::app
