#include "ui/chat_view.h"

#include <QHBoxLayout>
#include <QKeyEvent>
#include <QListView>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollBar>
#include <QVBoxLayout>

#include "ui/message_delegate.h"

namespace tidelane::ui {

ChatView::ChatView(ChatBackend* backend, ConversationStore* store, QWidget* parent)
    : QWidget(parent),
      backend_(backend),
      list_(new QListView(this)),
      composer_(new QPlainTextEdit(this)),
      send_(new QPushButton(tr("Send"), this)),
      stop_(new QPushButton(tr("Stop"), this)) {
  model_.setStore(store);
  list_->setModel(&model_);
  list_->setItemDelegate(new MessageDelegate(list_));
  list_->setVerticalScrollMode(QAbstractItemView::ScrollPerPixel);
  list_->setResizeMode(QListView::Adjust);
  list_->setUniformItemSizes(false);
  list_->setSelectionMode(QAbstractItemView::NoSelection);
  list_->setObjectName(QStringLiteral("messages"));
  list_->setAccessibleName(tr("Messages"));

  composer_->setObjectName(QStringLiteral("composer"));
  composer_->setAccessibleName(tr("Message"));
  composer_->setPlaceholderText(tr("Ask anything — Enter sends, Shift+Enter adds a line"));
  composer_->setMaximumHeight(120);
  composer_->installEventFilter(this);
  send_->setObjectName(QStringLiteral("send"));
  send_->setAccessibleName(tr("Send message"));
  stop_->setObjectName(QStringLiteral("stop"));
  stop_->setAccessibleName(tr("Stop answer"));
  stop_->setShortcut(Qt::Key_Escape);

  auto* buttons = new QVBoxLayout;
  buttons->addWidget(send_);
  buttons->addWidget(stop_);
  auto* bottom = new QHBoxLayout;
  bottom->addWidget(composer_, 1);
  bottom->addLayout(buttons);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(list_, 1);
  layout->addLayout(bottom);

  connect(send_, &QPushButton::clicked, this, &ChatView::sendCurrent);
  connect(stop_, &QPushButton::clicked, this, &ChatView::stop);
  connect(composer_, &QPlainTextEdit::textChanged, this, &ChatView::updateControls);
  connect(backend_, &ChatBackend::readyChanged, this, &ChatView::updateControls);

  connect(backend_, &ChatBackend::accepted, &model_, &ConversationModel::onAccepted);
  connect(backend_, &ChatBackend::routed, &model_, &ConversationModel::onRouted);
  connect(backend_, &ChatBackend::tokenReceived, &model_, &ConversationModel::onToken);
  connect(backend_, &ChatBackend::redirected, &model_, &ConversationModel::onRedirected);
  connect(backend_, &ChatBackend::degraded, &model_, &ConversationModel::onDegraded);
  connect(backend_, &ChatBackend::finished, &model_, &ConversationModel::onFinished);
  connect(backend_, &ChatBackend::failed, &model_, &ConversationModel::onFailed);
  const auto settle = [this](const QString& id) {
    if (id == current_) current_.clear();
    updateControls();
  };
  connect(backend_, &ChatBackend::finished, this, settle);
  connect(backend_, &ChatBackend::failed, this, settle);
  connect(&model_, &QAbstractItemModel::rowsInserted, list_, &QListView::scrollToBottom);
  connect(&model_, &QAbstractItemModel::modelReset, list_, &QListView::scrollToBottom);
  // Heights change as tokens arrive: lay out again, but at most every kRerenderMs.
  relayout_.setSingleShot(true);
  relayout_.setInterval(MessageDelegate::kRerenderMs);
  connect(&relayout_, &QTimer::timeout, this, &ChatView::relayout);
  connect(&model_, &QAbstractItemModel::dataChanged, this, [this] {
    if (!relayout_.isActive()) relayout_.start();
  });
  connect(&model_, &ConversationModel::conversationStarted, this, &ChatView::conversationChanged);
  updateControls();
}

void ChatView::sendCurrent() {
  const QString text = composer_->toPlainText().trimmed();
  if (text.isEmpty() || !current_.isEmpty() || !backend_->isReady()) return;
  model_.appendUser(text);
  composer_->clear();
  current_ = backend_->send(model_.turns(), 0);
  model_.beginAnswer(current_);
  updateControls();
}

void ChatView::relayout() {
  const auto* bar = list_->verticalScrollBar();
  const bool atBottom = bar->value() >= bar->maximum() - 4;
  list_->doItemsLayout();
  if (atBottom) list_->scrollToBottom();
}

void ChatView::openConversation(qint64 id) {
  if (!current_.isEmpty()) {
    backend_->cancel(current_);
    current_.clear();
  }
  model_.load(id);
  updateControls();
  composer_->setFocus();
  emit conversationChanged(id);
}

void ChatView::sendText(const QString& text) {
  composer_->setPlainText(text);
  sendCurrent();
}

void ChatView::stop() {
  if (!current_.isEmpty()) backend_->cancel(current_);
}

bool ChatView::eventFilter(QObject* watched, QEvent* event) {
  if (watched == composer_ && event->type() == QEvent::KeyPress) {
    const auto* key = static_cast<QKeyEvent*>(event);
    if ((key->key() == Qt::Key_Return || key->key() == Qt::Key_Enter) &&
        !(key->modifiers() & Qt::ShiftModifier)) {
      sendCurrent();
      return true;
    }
  }
  return QWidget::eventFilter(watched, event);
}

void ChatView::updateControls() {
  const bool idle = current_.isEmpty();
  send_->setEnabled(idle && backend_->isReady() && !composer_->toPlainText().trimmed().isEmpty());
  stop_->setEnabled(!idle);
}

}  // namespace tidelane::ui
