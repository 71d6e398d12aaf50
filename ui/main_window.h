// MainWindow: the conversation sidebar (when there is a store) beside the chat view, and a
// status bar saying where chats go and how the bundled services are doing. File → New chat
// (Ctrl+N), File → Search chats (Ctrl+F); View → Monitor (Ctrl+M) asks for the monitor
// with monitorRequested(); File → Settings (Ctrl+,) asks for the settings with
// settingsRequested() (the app shows a SettingsDialog and applies it); File → Models…
// (Ctrl+Shift+M) asks for the model manager with modelsRequested(). Selecting a conversation
// shows it; a new chat is stored with its first message and appears in the sidebar.
// File → Export chat as Markdown (Ctrl+E) / JSON (Ctrl+Shift+E) and Import chat (Ctrl+O) ask
// the app with exportRequested() / importRequested(); Edit → Copy last answer (Ctrl+Shift+C);
// Help → Keyboard shortcuts (F1, Ctrl+/) and Help → Welcome (welcomeRequested()).
#pragma once

#include <QMainWindow>

#include "ui/chat_backend.h"
#include "ui/conversation_store.h"

class QLabel;
class QSplitter;

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
  // Shows an error the user must read (a failed export or import), without blocking.
  void showError(const QString& title, const QString& message);
  // Help → Keyboard shortcuts (F1, Ctrl+/): every shortcut of this window, read from its actions.
  void showShortcuts();
  // Puts back the size, layout and open conversation of the last session (QSettings
  // "window/*"); closing the window keeps them.
  void restoreWindowState();
  void saveWindowState() const;

 signals:
  // The user asked for the live monitor (the app opens it; the window does not know how).
  void monitorRequested();
  // The user asked for the node panel (View → Node panel, Ctrl+Shift+N).
  void nodePanelRequested();
  // The user asked for the surge demo (View → Surge demo, Ctrl+Shift+D).
  void demoRequested();
  // The user asked for the settings.
  void settingsRequested();
  // The user asked for the model manager (File → Models…).
  void modelsRequested();
  // File → Export chat: write conversation `id` to `path` as JSON (else Markdown).
  void exportRequested(qint64 id, const QString& path, bool json);
  // File → Import chat: add the conversation in `path` (a JSON export).
  void importRequested(const QString& path);
  // Help → Welcome: the first-run screen again.
  void welcomeRequested();

 private:
  void watchBackend();
  void exportCurrent(bool json);
  void closeEvent(QCloseEvent* event) override;

  ChatBackend* backend_;
  ChatView* chat_;
  ConversationSidebar* sidebar_ = nullptr;
  QLabel* status_;
  QSplitter* split_ = nullptr;
  ConversationStore* store_;
};

}  // namespace tidelane::ui
