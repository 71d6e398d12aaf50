// ConversationSidebar: New chat, a search field that filters as you type, and the
// conversations grouped by date. Right-click (or the keys F2, Ctrl+P, Delete) renames,
// pins/unpins or deletes the selected conversation; a deletion can be undone from the bar
// that appears for kUndoMs, after which it is final.
//
// The widget only forwards intent: ConversationListModel and the store do the work.
// Threading: GUI thread only. The store is not owned and must outlive the sidebar.
#pragma once

#include <QTimer>
#include <QWidget>

#include "ui/conversation_list_model.h"

class QAction;
class QLabel;
class QLineEdit;
class QListView;
class QPushButton;

namespace tidelane::ui {

class ConversationSidebar : public QWidget {
  Q_OBJECT

 public:
  static constexpr int kUndoMs = 10000;

  explicit ConversationSidebar(ConversationStore* store, QWidget* parent = nullptr);

  ConversationListModel* model() { return &model_; }
  qint64 currentConversation() const { return current_; }

 public slots:
  // Highlights conversation `id` (0: none) without emitting conversationSelected.
  void setCurrentConversation(qint64 id);
  void focusSearch();
  void renameCurrent();
  void togglePinCurrent();
  void deleteCurrent();
  void undoDelete();

 signals:
  void conversationSelected(qint64 id);
  void newChatRequested();
  // `id` was deleted (undo may still bring it back).
  void conversationRemoved(qint64 id);

 private:
  void select(const QModelIndex& index);
  void restoreSelection();
  void updateActions();
  void finishUndoWindow();

  ConversationListModel model_;
  QPushButton* newChat_;
  QLineEdit* search_;
  QListView* list_;
  QWidget* undoBar_;
  QLabel* undoLabel_;
  QAction* rename_;
  QAction* pin_;
  QAction* delete_;
  QTimer undoTimer_;
  qint64 current_ = 0;
  qint64 removed_ = 0;  // the deletion the undo bar offers to take back
  bool restoring_ = false;
};

}  // namespace tidelane::ui
