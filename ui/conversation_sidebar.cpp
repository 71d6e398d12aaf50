#include "ui/conversation_sidebar.h"

#include <QAction>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListView>
#include <QPushButton>
#include <QVBoxLayout>

namespace tidelane::ui {

ConversationSidebar::ConversationSidebar(ConversationStore* store, QWidget* parent)
    : QWidget(parent),
      model_(store),
      newChat_(new QPushButton(tr("New chat"), this)),
      search_(new QLineEdit(this)),
      list_(new QListView(this)),
      undoBar_(new QWidget(this)),
      undoLabel_(new QLabel(undoBar_)),
      rename_(new QAction(tr("Rename…"), this)),
      pin_(new QAction(tr("Pin"), this)),
      delete_(new QAction(tr("Delete"), this)) {
  setObjectName(QStringLiteral("conversationSidebar"));
  setAccessibleName(tr("Conversations"));
  newChat_->setObjectName(QStringLiteral("newChat"));
  newChat_->setAccessibleName(tr("New chat"));
  newChat_->setToolTip(tr("Start a new conversation (Ctrl+N)"));
  search_->setObjectName(QStringLiteral("searchChats"));
  search_->setAccessibleName(tr("Search conversations"));
  search_->setPlaceholderText(tr("Search chats"));
  search_->setClearButtonEnabled(true);
  list_->setObjectName(QStringLiteral("conversations"));
  list_->setAccessibleName(tr("Conversations"));
  list_->setModel(&model_);
  list_->setSelectionMode(QAbstractItemView::SingleSelection);
  list_->setEditTriggers(QAbstractItemView::EditKeyPressed);
  list_->setUniformItemSizes(true);
  list_->setContextMenuPolicy(Qt::ActionsContextMenu);

  rename_->setObjectName(QStringLiteral("renameChat"));
  rename_->setShortcut(Qt::Key_F2);
  pin_->setObjectName(QStringLiteral("pinChat"));
  pin_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_P));
  delete_->setObjectName(QStringLiteral("deleteChat"));
  delete_->setShortcut(QKeySequence::Delete);
  for (auto* a : {rename_, pin_, delete_}) {
    a->setShortcutContext(Qt::WidgetShortcut);
    list_->addAction(a);
  }

  auto* undo = new QPushButton(tr("Undo"), undoBar_);
  undo->setObjectName(QStringLiteral("undoDelete"));
  undo->setAccessibleName(tr("Undo delete"));
  undoBar_->setObjectName(QStringLiteral("undoBar"));
  undoLabel_->setWordWrap(true);
  auto* undoLayout = new QHBoxLayout(undoBar_);
  undoLayout->setContentsMargins(4, 2, 4, 2);
  undoLayout->addWidget(undoLabel_, 1);
  undoLayout->addWidget(undo);
  undoBar_->hide();
  undoTimer_.setSingleShot(true);
  undoTimer_.setInterval(kUndoMs);

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(newChat_);
  layout->addWidget(search_);
  layout->addWidget(list_, 1);
  layout->addWidget(undoBar_);

  connect(newChat_, &QPushButton::clicked, this, &ConversationSidebar::newChatRequested);
  connect(search_, &QLineEdit::textChanged, &model_, &ConversationListModel::setFilter);
  connect(list_->selectionModel(), &QItemSelectionModel::currentChanged, this,
          [this](const QModelIndex& index) { select(index); });
  connect(&model_, &QAbstractItemModel::modelReset, this, &ConversationSidebar::restoreSelection);
  connect(rename_, &QAction::triggered, this, &ConversationSidebar::renameCurrent);
  connect(pin_, &QAction::triggered, this, &ConversationSidebar::togglePinCurrent);
  connect(delete_, &QAction::triggered, this, &ConversationSidebar::deleteCurrent);
  connect(undo, &QPushButton::clicked, this, &ConversationSidebar::undoDelete);
  connect(&undoTimer_, &QTimer::timeout, this, &ConversationSidebar::finishUndoWindow);
  updateActions();
}

void ConversationSidebar::select(const QModelIndex& index) {
  if (restoring_) return;
  const qint64 id = model_.idAt(index.row());
  if (id == 0 || id == current_) return;
  current_ = id;
  updateActions();
  emit conversationSelected(id);
}

void ConversationSidebar::setCurrentConversation(qint64 id) {
  current_ = id;
  restoreSelection();
}

void ConversationSidebar::restoreSelection() {
  restoring_ = true;
  const int row = model_.rowOf(current_);
  if (row >= 0) {
    list_->setCurrentIndex(model_.index(row));
  } else {
    list_->clearSelection();
    list_->setCurrentIndex({});
  }
  restoring_ = false;
  updateActions();
}

void ConversationSidebar::updateActions() {
  const int row = model_.rowOf(current_);
  for (auto* a : {rename_, pin_, delete_}) a->setEnabled(row >= 0);
  const bool pinned =
      row >= 0 && model_.index(row).data(ConversationListModel::PinnedRole).toBool();
  pin_->setText(pinned ? tr("Unpin") : tr("Pin"));
}

void ConversationSidebar::focusSearch() {
  search_->setFocus();
  search_->selectAll();
}

void ConversationSidebar::renameCurrent() {
  const int row = model_.rowOf(current_);
  if (row >= 0) list_->edit(model_.index(row));
}

void ConversationSidebar::togglePinCurrent() {
  if (current_ != 0) model_.togglePinned(current_);
}

void ConversationSidebar::deleteCurrent() {
  const int row = model_.rowOf(current_);
  if (row < 0) return;
  const QString title = model_.index(row).data(Qt::DisplayRole).toString();
  finishUndoWindow();  // one undo at a time: an earlier deletion becomes final
  const qint64 id = current_;
  if (!model_.remove(id)) return;
  removed_ = id;
  current_ = 0;
  undoLabel_->setText(tr("Deleted “%1”").arg(title));
  undoBar_->show();
  undoTimer_.start();
  restoreSelection();
  emit conversationRemoved(id);
}

void ConversationSidebar::undoDelete() {
  if (removed_ == 0) return;
  const qint64 id = removed_;
  removed_ = 0;
  undoTimer_.stop();
  undoBar_->hide();
  if (model_.undoRemove(id)) {
    setCurrentConversation(id);
    emit conversationSelected(id);
  }
}

void ConversationSidebar::finishUndoWindow() {
  undoTimer_.stop();
  undoBar_->hide();
  if (removed_ != 0) model_.purgeRemoved();
  removed_ = 0;
}

}  // namespace tidelane::ui
