// ChatView: the message list above a composer. Sends through a ChatBackend, streams the
// answer into a ConversationModel; Enter sends, Shift+Enter adds a line, Esc stops.
#pragma once

#include <QPointer>
#include <QWidget>

#include "ui/chat_backend.h"
#include "ui/conversation_model.h"

class QListView;
class QPlainTextEdit;
class QPushButton;

namespace tidelane::ui {

class ChatView : public QWidget {
  Q_OBJECT

 public:
  // `backend` must outlive the view.
  explicit ChatView(ChatBackend* backend, QWidget* parent = nullptr);

  ConversationModel* model() { return &model_; }

 public slots:
  void sendCurrent();
  void stop();

 protected:
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  void updateControls();

  ChatBackend* backend_;
  ConversationModel model_;
  QListView* list_;
  QPlainTextEdit* composer_;
  QPushButton* send_;
  QPushButton* stop_;
  QString current_;  // request being answered, if any
};

}  // namespace tidelane::ui
