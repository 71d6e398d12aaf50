#include "app/receipt_check.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QObject>

#include "router/receipt/receipt.h"
#include "tidelane/v1/chat.pb.h"

namespace tidelane::app {

QString receiptDocument(const v1::Receipt& r) {
  try {
    return QString::fromStdString(
        receipt::ToJsonDocument({r.payload(), r.worker_signature(), r.worker_public_key(),
                                 r.router_signature(), r.router_public_key()}));
  } catch (const std::exception& e) {
    QJsonObject broken{{QStringLiteral("object"), QStringLiteral("tidelane.receipt")},
                       {QStringLiteral("error"), QString::fromStdString(e.what())}};
    return QString::fromUtf8(QJsonDocument(broken).toJson(QJsonDocument::Compact));
  }
}

ui::ReceiptStatus checkReceipt(const QString& receiptJson, const QString& answerText) {
  ui::ReceiptStatus status;
  if (receiptJson.isEmpty()) return status;
  status.badge = ui::ReceiptBadge::Invalid;
  receipt::Envelope envelope;
  try {
    envelope = receipt::FromJsonDocument(receiptJson.toStdString());
  } catch (const std::exception& e) {
    status.problem = QObject::tr("The receipt is unreadable: %1").arg(QString::fromUtf8(e.what()));
    return status;
  }
  const std::string answer = answerText.toStdString();
  const auto v = receipt::Verify(envelope, {}, std::string_view(answer));
  for (const auto& [field, value] : receipt::DescribePayload(v.payload)) {
    status.fields.append({QString::fromStdString(field), QString::fromStdString(value)});
  }
  if (!v.ok()) {
    status.problem = QStringLiteral("%1 (%2)").arg(
        QString::fromStdString(v.message),
        QString::fromStdString(std::string(receipt::CheckName(v.failed))));
    return status;
  }
  status.badge = ui::ReceiptBadge::Verified;
  return status;
}

}  // namespace tidelane::app
