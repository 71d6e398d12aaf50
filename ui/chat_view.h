// ChatView: the message list above a composer. Sends through a ChatBackend, streams the
// answer into a ConversationModel (recorded in a ConversationStore when one is given);
// Enter sends, Shift+Enter adds a line, Esc stops. The list is laid out again at most
// every MessageDelegate::kRerenderMs while an answer grows.
#pragma once

#include <QPointer>
#include <QTimer>
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
  // `backend` and `store` (null: nothing is recorded) must outlive the view.
  explicit ChatView(ChatBackend* backend, ConversationStore* store = nullptr,
                    QWidget* parent = nullptr);

  ConversationModel* model() { return &model_; }
  qint64 conversationId() const { return model_.conversationId(); }

 public slots:
  void sendCurrent();
  // Sends `text` as if typed into the composer and sent.
  void sendText(const QString& text);
  void stop();
  // Shows stored conversation `id` (0: a new chat). An answer still coming in is stopped
  // and kept as far as it got.
  void openConversation(qint64 id);
  void newConversation() { openConversation(0); }

 signals:
  // The conversation shown changed, or a new chat was stored under `id`.
  void conversationChanged(qint64 id);

 protected:
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  void updateControls();
  void relayout();

  ChatBackend* backend_;
  ConversationModel model_;
  QListView* list_;
  QPlainTextEdit* composer_;
  QPushButton* send_;
  QPushButton* stop_;
  QString current_;  // request being answered, if any
  QTimer relayout_;
};

}  // namespace tidelane::ui
