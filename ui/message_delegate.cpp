#include "ui/message_delegate.h"

#include <QApplication>
#include <QPainter>

#include "ui/conversation_model.h"

namespace tidelane::ui {
namespace {

constexpr int kMargin = 8;
constexpr int kPadding = 10;

QFont smaller(QFont f) {
  f.setPointSizeF(f.pointSizeF() * 0.85);
  return f;
}

QFont bold(QFont f) {
  f.setBold(true);
  return f;
}

}  // namespace

MessageDelegate::Layout MessageDelegate::layout(const QStyleOptionViewItem& option,
                                                const QModelIndex& index) const {
  const int width = std::max(120, option.rect.width() - 2 * kMargin - 2 * kPadding);
  const QString text = index.data(ConversationModel::TextRole).toString();
  const QString trace = index.data(ConversationModel::TraceRole).toString();
  const QFontMetrics fm(option.font);
  const QFontMetrics whoFm(bold(option.font));
  const QFontMetrics traceFm(smaller(option.font));

  Layout l;
  int y = option.rect.top() + kMargin + kPadding;
  const int x = option.rect.left() + kMargin + kPadding;
  l.who = QRect(x, y, width, whoFm.height());
  y += l.who.height() + 2;
  const QRect textBox = fm.boundingRect(QRect(0, 0, width, 1 << 20), Qt::TextWordWrap,
                                        text.isEmpty() ? QStringLiteral("…") : text);
  l.text = QRect(x, y, width, textBox.height());
  y += l.text.height();
  if (!trace.isEmpty()) {
    const QRect traceBox =
        traceFm.boundingRect(QRect(0, 0, width, 1 << 20), Qt::TextWordWrap, trace);
    l.trace = QRect(x, y + 4, width, traceBox.height());
    y = l.trace.bottom() + 1;
  }
  l.bubble = QRect(option.rect.left() + kMargin, option.rect.top() + kMargin, width + 2 * kPadding,
                   y + kPadding - option.rect.top() - kMargin);
  return l;
}

QSize MessageDelegate::sizeHint(const QStyleOptionViewItem& option,
                                const QModelIndex& index) const {
  const Layout l = layout(option, index);
  return {option.rect.width(), l.bubble.height() + 2 * kMargin};
}

void MessageDelegate::paint(QPainter* painter, const QStyleOptionViewItem& option,
                            const QModelIndex& index) const {
  const Layout l = layout(option, index);
  const bool user = index.data(ConversationModel::RoleRole).toString() == QLatin1String("user");
  const auto state = index.data(ConversationModel::StateRole).value<ConversationModel::State>();
  const QPalette& pal = option.palette;

  painter->save();
  painter->setRenderHint(QPainter::Antialiasing);
  QColor fill = user ? pal.color(QPalette::AlternateBase) : pal.color(QPalette::Base);
  if (state == ConversationModel::State::Failed) fill = QColor(0xf8, 0xd7, 0xda);
  painter->setPen(pal.color(QPalette::Mid));
  painter->setBrush(fill);
  painter->drawRoundedRect(l.bubble, 8, 8);

  painter->setPen(pal.color(QPalette::Text));
  painter->setFont(bold(option.font));
  painter->drawText(l.who, Qt::AlignLeft, user ? tr("You") : tr("Tidelane"));
  painter->setFont(option.font);
  const QString text = index.data(ConversationModel::TextRole).toString();
  painter->drawText(l.text, Qt::TextWordWrap, text.isEmpty() ? QStringLiteral("…") : text);
  const QString trace = index.data(ConversationModel::TraceRole).toString();
  if (!trace.isEmpty()) {
    painter->setFont(smaller(option.font));
    painter->setPen(pal.color(QPalette::PlaceholderText));
    painter->drawText(l.trace, Qt::TextWordWrap, trace);
  }
  painter->restore();
}

}  // namespace tidelane::ui
