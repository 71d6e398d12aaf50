// MessageDelegate: paints one message of a ConversationModel: who, the text wrapped to the
// view's width, and the routing trace in a smaller line beneath.
#pragma once

#include <QStyledItemDelegate>

namespace tidelane::ui {

class MessageDelegate : public QStyledItemDelegate {
  Q_OBJECT

 public:
  using QStyledItemDelegate::QStyledItemDelegate;

  void paint(QPainter* painter, const QStyleOptionViewItem& option,
             const QModelIndex& index) const override;
  QSize sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const override;

 private:
  struct Layout {
    QRect bubble, who, text, trace;
  };
  Layout layout(const QStyleOptionViewItem& option, const QModelIndex& index) const;
};

}  // namespace tidelane::ui
