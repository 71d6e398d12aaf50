// MainWindow: the conversation sidebar (when there is a store) beside the chat view, and a
// status bar saying where chats go and how the bundled services are doing. File → New chat
// (Ctrl+N), File → Search chats (Ctrl+F); View → Monitor (Ctrl+M) asks for the monitor
// with monitorRequested(); File → Settings (Ctrl+,) asks for the settings with
// settingsRequested() (the app shows a SettingsDialog and applies it). Selecting a conversation
// shows it; a new chat is stored with its first message and appears in the sidebar.
#pragma once

#include <QMainWindow>

#include "ui/chat_backend.h"
#include "ui/conversation_store.h"

class QLabel;

namespace tidelane::ui {

class ChatView;
class ConversationSidebar;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  // `backend` and `store` must outlive the window; without a store (null) there is no
  // history and no sidebar.
  explicit MainWindow(ChatBackend* backend, ConversationStore* store = nullptr,
                      QWidget* parent = nullptr);

  ChatView* chatView() { return chat_; }
  // Chats go through `backend` from now on (it must outlive the window).
  void setBackend(ChatBackend* backend);
  ConversationSidebar* sidebar() { return sidebar_; }  // null without a store

 public slots:
  // Shows a line about the bundled services ("starting the bundled router…", a restart).
  void showServiceStatus(const QString& message);

 signals:
  // The user asked for the live monitor (the app opens it; the window does not know how).
  void monitorRequested();
  // The user asked for the settings.
  void settingsRequested();

 private:
  void watchBackend();

  ChatBackend* backend_;
  ChatView* chat_;
  ConversationSidebar* sidebar_ = nullptr;
  QLabel* status_;
};

}  // namespace tidelane::ui
