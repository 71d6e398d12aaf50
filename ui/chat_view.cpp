#include "ui/chat_view.h"

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QMenu>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QVBoxLayout>

#include "ui/generation_bar.h"
#include "ui/message_list_view.h"
#include "ui/receipt_dialog.h"

namespace tidelane::ui {
ChatView::ChatView(ChatBackend* backend, ConversationStore* store, QWidget* parent)
    : QWidget(parent),
      backend_(backend),
      list_(new MessageListView(this)),
      composer_(new QPlainTextEdit(this)),
      send_(new QPushButton(tr("Send"), this)),
      stop_(new QPushButton(tr("Stop"), this)),
      editBanner_(new QLabel(this)),
      bar_(new GenerationBar(this)) {
  model_.setStore(store);
  list_->setModel(&model_);
  installDelegate();
  list_->setMouseTracking(true);
  list_->setContextMenuPolicy(Qt::CustomContextMenu);
  connect(list_, &QWidget::customContextMenuRequested, this, &ChatView::showContextMenu);
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

  editBanner_->setObjectName(QStringLiteral("editBanner"));
  editBanner_->setAccessibleName(tr("Editing a message"));
  editBanner_->setText(tr("Editing a message — Enter sends it as a new branch, Esc cancels"));
  editBanner_->hide();

  auto* regenerateAction = new QAction(tr("Regenerate answer"), this);
  regenerateAction->setObjectName(QStringLiteral("regenerateAction"));
  regenerateAction->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_R));
  regenerateAction->setShortcutContext(Qt::WidgetWithChildrenShortcut);
  connect(regenerateAction, &QAction::triggered, this, [this] { regenerate(-1); });
  addAction(regenerateAction);

  auto* buttons = new QVBoxLayout;
  buttons->addWidget(send_);
  buttons->addWidget(stop_);
  auto* bottom = new QHBoxLayout;
  bottom->addWidget(composer_, 1);
  bottom->addLayout(buttons);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(list_, 1);
  layout->addWidget(editBanner_);
  layout->addWidget(bar_);
  layout->addLayout(bottom);
  connect(bar_, &GenerationBar::settingsEdited, this, &ChatView::setConversationSettings);
  connect(bar_, &GenerationBar::modelsWanted, this, [this] { backend_->requestModels(); });
  // A new chat is stored with its first message: its settings go with it.
  connect(&model_, &ConversationModel::conversationStarted, this, [this](qint64 id) {
    if (model_.store()) model_.store()->setModel(id, settings_.model, settings_.toJsonText());
  });

  connect(send_, &QPushButton::clicked, this, &ChatView::sendCurrent);
  connect(stop_, &QPushButton::clicked, this, &ChatView::stop);
  connect(composer_, &QPlainTextEdit::textChanged, this, &ChatView::updateControls);
  connectBackend();
  connect(&model_, &QAbstractItemModel::rowsInserted, list_, &QAbstractItemView::scrollToBottom);
  connect(&model_, &QAbstractItemModel::modelReset, list_, &QAbstractItemView::scrollToBottom);
  // Following the newest text as an answer streams in (the list measures the growing row every
  // kRerenderMs), unless the user scrolled away from it.
  list_->setFollowsEnd(true);
  connect(&model_, &ConversationModel::conversationStarted, this, &ChatView::conversationChanged);
  updateControls();
}

void ChatView::installDelegate() {
  QAbstractItemDelegate* old = list_->itemDelegate();
  auto* delegate = new MessageDelegate(list_);
  list_->setMessageDelegate(delegate);
  connect(delegate, &MessageDelegate::actionTriggered, this, &ChatView::onAction);
  if (old && old != delegate) old->deleteLater();
}

void ChatView::changeEvent(QEvent* event) {
  // The delegate caches messages rendered with the old palette's colours: a new theme
  // renders them again.
  if (event->type() == QEvent::PaletteChange) {
    installDelegate();
    list_->doItemsLayout();
  }
  QWidget::changeEvent(event);
}

void ChatView::connectBackend() {
  connect(backend_, &ChatBackend::readyChanged, this, &ChatView::updateControls);
  connect(backend_, &ChatBackend::readyChanged, this, [this](bool ready) {
    if (ready) backend_->requestModels();
  });
  connect(backend_, &ChatBackend::modelsListed, bar_, &GenerationBar::setModels);
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
}

void ChatView::setBackend(ChatBackend* backend) {
  if (!backend || backend == backend_) return;
  if (!current_.isEmpty()) {
    // The answer coming in is kept as far as it got, recorded as stopped.
    const QString id = std::exchange(current_, {});
    backend_->cancel(id);
    AnswerSummary stopped;
    stopped.finishReason = QStringLiteral("cancelled");
    model_.onFinished(id, stopped);
  }
  disconnect(backend_, nullptr, this, nullptr);
  disconnect(backend_, nullptr, &model_, nullptr);
  backend_ = backend;
  connectBackend();
  updateControls();
}

void ChatView::sendCurrent() {
  const QString text = composer_->toPlainText().trimmed();
  if (text.isEmpty() || !current_.isEmpty() || !backend_->isReady()) return;
  const int editing = editingRow();
  if (editing >= 0) {
    model_.editUser(editing, text);
    editingKey_ = 0;
    editBanner_->hide();
  } else {
    model_.appendUser(text);
  }
  composer_->clear();
  current_ = backend_->sendWith(settings_.withSystemPrompt(model_.turns()), settings_.options());
  model_.beginAnswer(current_);
  updateControls();
}

void ChatView::openConversation(qint64 id) {
  cancelEdit();
  if (!current_.isEmpty()) {
    backend_->cancel(current_);
    current_.clear();
  }
  model_.load(id);
  settings_ = defaults_;
  if (id > 0 && model_.store()) {
    const ConversationInfo info = model_.store()->conversation(id);
    settings_ = ConversationSettings::fromJsonText(info.settingsJson, info.model);
  }
  bar_->setSettings(settings_);
  updateControls();
  composer_->setFocus();
  emit conversationChanged(id);
}

void ChatView::setDefaultSettings(const ConversationSettings& defaults) {
  defaults_ = defaults;
  if (conversationId() == 0 && model_.rowCount() == 0) {
    settings_ = defaults;
    bar_->setSettings(settings_);
  }
}

void ChatView::setPresets(const QList<PromptPreset>& userPresets) {
  bar_->setPresets(userPresets);
}

void ChatView::setConversationSettings(const ConversationSettings& settings) {
  settings_ = settings;
  bar_->setSettings(settings);
  const qint64 id = conversationId();
  if (id > 0 && model_.store()) {
    model_.store()->setModel(id, settings.model, settings.toJsonText());
  }
}

void ChatView::sendText(const QString& text) {
  composer_->setPlainText(text);
  sendCurrent();
}

void ChatView::stop() {
  if (!current_.isEmpty()) backend_->cancel(current_);
}

int ChatView::editingRow() const {
  if (editingKey_ == 0) return -1;
  for (int r = 0; r < model_.rowCount(); ++r) {
    if (model_.index(r).data(ConversationModel::KeyRole).toULongLong() == editingKey_) return r;
  }
  return -1;
}

void ChatView::regenerate(int row) {
  if (row < 0) row = model_.lastAnswerRow();
  if (row < 0 || !idle() || !backend_->isReady()) return;
  if (model_.index(row).data(ConversationModel::RoleRole).toString() !=
      QLatin1String("assistant")) {
    return;
  }
  cancelEdit();
  const QString id =
      backend_->sendWith(settings_.withSystemPrompt(model_.turnsBefore(row)), settings_.options());
  current_ = id;
  model_.regenerate(row, id);
  updateControls();
}

void ChatView::beginEdit(int row) {
  const QModelIndex i = model_.index(row);
  if (!i.isValid() || !idle() ||
      i.data(ConversationModel::RoleRole).toString() != QLatin1String("user")) {
    return;
  }
  editingKey_ = i.data(ConversationModel::KeyRole).toULongLong();
  composer_->setPlainText(i.data(ConversationModel::TextRole).toString());
  composer_->moveCursor(QTextCursor::End);
  composer_->setFocus();
  editBanner_->show();
}

void ChatView::cancelEdit() {
  if (editingKey_ == 0) return;
  editingKey_ = 0;
  editBanner_->hide();
  composer_->clear();
}

void ChatView::copyMessage(int row) {
  const QModelIndex i = model_.index(row);
  if (i.isValid())
    QApplication::clipboard()->setText(i.data(ConversationModel::TextRole).toString());
}

void ChatView::showBranch(int row, int delta) {
  if (!idle()) return;
  cancelEdit();
  model_.showBranch(row, delta);
}

void ChatView::toggleTrace(int row) {
  const QModelIndex i = model_.index(row);
  if (!i.isValid()) return;
  // The list measures that row again (dataChanged).
  model_.setData(i, !i.data(ConversationModel::ExpandedRole).toBool(),
                 ConversationModel::ExpandedRole);
}

void ChatView::showReceipt(int row) {
  const QModelIndex i = model_.index(row);
  const auto badge = static_cast<ReceiptBadge>(i.data(ConversationModel::ReceiptBadgeRole).toInt());
  if (!i.isValid() || badge == ReceiptBadge::None) return;
  auto* dialog = new ReceiptDialog(badge, i.data(ConversationModel::ReceiptProblemRole).toString(),
                                   i.data(ConversationModel::ReceiptFieldsRole).toStringList(),
                                   i.data(ConversationModel::ReceiptJsonRole).toString(), this);
  dialog->setAttribute(Qt::WA_DeleteOnClose);
  dialog->open();
}

void ChatView::onAction(const QModelIndex& index, MessageDelegate::Action action,
                        const QString& code) {
  const int row = index.row();
  switch (action) {
    case MessageDelegate::Action::Copy:
      copyMessage(row);
      break;
    case MessageDelegate::Action::CopyCode:
      QApplication::clipboard()->setText(code);
      break;
    case MessageDelegate::Action::Edit:
      beginEdit(row);
      break;
    case MessageDelegate::Action::Regenerate:
      regenerate(row);
      break;
    case MessageDelegate::Action::PreviousBranch:
      showBranch(row, -1);
      break;
    case MessageDelegate::Action::NextBranch:
      showBranch(row, +1);
      break;
    case MessageDelegate::Action::ToggleTrace:
      toggleTrace(row);
      break;
    case MessageDelegate::Action::ShowReceipt:
      showReceipt(row);
      break;
    case MessageDelegate::Action::None:
      break;
  }
}

void ChatView::showContextMenu(const QPoint& pos) {
  const QModelIndex i = list_->indexAt(pos);
  if (!i.isValid()) return;
  const int row = i.row();
  const bool user = i.data(ConversationModel::RoleRole).toString() == QLatin1String("user");
  QMenu menu(this);
  menu.setAccessibleName(tr("Message actions"));
  menu.addAction(tr("Copy message"), this, [this, row] { copyMessage(row); });
  if (user) {
    menu.addAction(tr("Edit and resend"), this, [this, row] { beginEdit(row); })
        ->setEnabled(idle());
  } else {
    menu.addAction(tr("Regenerate"), this, [this, row] { regenerate(row); })
        ->setEnabled(idle() && backend_->isReady());
    if (!i.data(ConversationModel::TimelineRole).toStringList().isEmpty()) {
      menu.addAction(i.data(ConversationModel::ExpandedRole).toBool() ? tr("Hide routing timeline")
                                                                      : tr("Show routing timeline"),
                     this, [this, row] { toggleTrace(row); });
    }
  }
  const int count = i.data(ConversationModel::BranchCountRole).toInt();
  if (count > 1) {
    const int at = i.data(ConversationModel::BranchRole).toInt();
    menu.addAction(tr("Previous branch"), this, [this, row] { showBranch(row, -1); })
        ->setEnabled(idle() && at > 1);
    menu.addAction(tr("Next branch"), this, [this, row] { showBranch(row, +1); })
        ->setEnabled(idle() && at < count);
  }
  menu.exec(list_->viewport()->mapToGlobal(pos));
}

bool ChatView::eventFilter(QObject* watched, QEvent* event) {
  if (watched == composer_ && editingKey_ != 0 &&
      (event->type() == QEvent::ShortcutOverride || event->type() == QEvent::KeyPress) &&
      static_cast<QKeyEvent*>(event)->key() == Qt::Key_Escape && idle()) {
    // Esc while editing gives the edit up (Stop has nothing to stop).
    event->accept();
    if (event->type() == QEvent::KeyPress) cancelEdit();
    return true;
  }
  if (watched == composer_ && event->type() == QEvent::KeyPress &&
      static_cast<QKeyEvent*>(event)->key() == Qt::Key_Escape && !idle()) {
    stop();  // Esc stops wherever the focus is: here, and through Stop's shortcut elsewhere
    return true;
  }
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
