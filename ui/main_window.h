// MainWindow: the chat view, and a status bar saying where chats go and how the bundled
// services are doing. View → Monitor (Ctrl+M) asks for the monitor with monitorRequested().
#pragma once

#include <QMainWindow>

#include "ui/chat_backend.h"

class QLabel;

namespace tidelane::ui {

class ChatView;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  // `backend` must outlive the window.
  explicit MainWindow(ChatBackend* backend, QWidget* parent = nullptr);

  ChatView* chatView() { return chat_; }

 public slots:
  // Shows a line about the bundled services ("starting the bundled router…", a restart).
  void showServiceStatus(const QString& message);

 signals:
  // The user asked for the live monitor (the app opens it; the window does not know how).
  void monitorRequested();

 private:
  ChatBackend* backend_;
  ChatView* chat_;
  QLabel* status_;
};

}  // namespace tidelane::ui
