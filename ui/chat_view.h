// ChatView: the message list above a composer. Sends through a ChatBackend, streams the
// answer into a ConversationModel (recorded in a ConversationStore when one is given);
// Enter sends, Shift+Enter adds a line, Esc stops. The list (MessageListView) measures the
// growing answer's row again at most every MessageDelegate::kRerenderMs, and only that row.
//
// Message flows (from the links under a message, its context menu, or the slots below):
// copy a message or a code block to the clipboard; regenerate an answer (Ctrl+R: the last
// one) as a new branch; edit a user message: its text goes into the composer, Enter sends
// it as a new branch (Esc gives up); ‹ › switch between branches; clicking the routing line
// opens the answer's timeline. None of them runs while an answer is coming in, except
// Copy and opening a timeline.
//
// Above the composer, a GenerationBar shows the conversation's settings (system prompt,
// model, sampling): a new chat starts from setDefaultSettings(), a stored one from the store,
// and every request of the conversation is sent with them.
#pragma once

#include <QPersistentModelIndex>
#include <QPointer>
#include <QTimer>
#include <QWidget>

#include "ui/chat_backend.h"
#include "ui/conversation_model.h"
#include "ui/conversation_settings.h"
#include "ui/message_delegate.h"

class QLabel;
class QPlainTextEdit;
class QPushButton;

namespace tidelane::ui {

class GenerationBar;
class MessageListView;

class ChatView : public QWidget {
  Q_OBJECT

 public:
  // `backend` and `store` (null: nothing is recorded) must outlive the view.
  explicit ChatView(ChatBackend* backend, ConversationStore* store = nullptr,
                    QWidget* parent = nullptr);

  ConversationModel* model() { return &model_; }
  ChatBackend* backend() const { return backend_; }
  // Sends from now on through `backend` (which must outlive the view); an answer still
  // coming in through the old one is stopped and kept as far as it got.
  void setBackend(ChatBackend* backend);
  qint64 conversationId() const { return model_.conversationId(); }
  // The settings the conversation shown is answered with (kept with it in the store).
  ConversationSettings conversationSettings() const { return settings_; }
  GenerationBar* generationBar() { return bar_; }
  // What a new chat starts with (the app's defaults).
  void setDefaultSettings(const ConversationSettings& defaults);
  // The user's own system-prompt presets (the built-in ones are always there).
  void setPresets(const QList<PromptPreset>& userPresets);

 public slots:
  void sendCurrent();
  // Sends `text` as if typed into the composer and sent.
  void sendText(const QString& text);
  void stop();
  // Shows stored conversation `id` (0: a new chat). An answer still coming in is stopped
  // and kept as far as it got.
  void openConversation(qint64 id);
  void newConversation() { openConversation(0); }
  // Regenerates answer `row` (-1: the last answer shown).
  void regenerate(int row = -1);
  // Puts user message `row` into the composer; the next send replaces it as a new branch.
  void beginEdit(int row);
  void cancelEdit();
  void copyMessage(int row);
  // Shows the previous (-1) or next (+1) branch at `row`.
  void showBranch(int row, int delta);
  // Shows or hides the routing timeline under answer `row`.
  void toggleTrace(int row);
  // Opens the receipt of answer `row` (what was signed, and whether it verifies).
  void showReceipt(int row);
  // Answers the conversation shown with `settings` from now on, and keeps them with it.
  void setConversationSettings(const tidelane::ui::ConversationSettings& settings);

 public:
  // The user message being edited (-1: none).
  int editingRow() const;

 signals:
  // The conversation shown changed, or a new chat was stored under `id`.
  void conversationChanged(qint64 id);

 protected:
  bool eventFilter(QObject* watched, QEvent* event) override;
  void changeEvent(QEvent* event) override;

 private:
  void connectBackend();
  void installDelegate();
  void updateControls();
  void onAction(const QModelIndex& index, MessageDelegate::Action action, const QString& code);
  void showContextMenu(const QPoint& pos);
  bool idle() const { return current_.isEmpty(); }

  ChatBackend* backend_;
  ConversationModel model_;
  MessageListView* list_;
  QPlainTextEdit* composer_;
  QPushButton* send_;
  QPushButton* stop_;
  QLabel* editBanner_;
  quint64 editingKey_ = 0;  // ConversationModel::KeyRole of the message being edited
  QString current_;         // request being answered, if any
  GenerationBar* bar_;
  ConversationSettings settings_;
  ConversationSettings defaults_;
};

}  // namespace tidelane::ui
