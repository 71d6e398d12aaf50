#include "ui/main_window.h"

#include <QAction>
#include <QApplication>
#include <QLabel>
#include <QMenuBar>
#include <QSplitter>
#include <QStatusBar>

#include "ui/chat_view.h"
#include "ui/conversation_sidebar.h"

namespace tidelane::ui {

MainWindow::MainWindow(ChatBackend* backend, ConversationStore* store, QWidget* parent)
    : QMainWindow(parent),
      backend_(backend),
      chat_(new ChatView(backend, store, this)),
      status_(new QLabel(this)) {
  setWindowTitle(tr("Tidelane"));
  if (store) {
    sidebar_ = new ConversationSidebar(store, this);
    auto* split = new QSplitter(this);
    split->setObjectName(QStringLiteral("mainSplitter"));
    split->addWidget(sidebar_);
    split->addWidget(chat_);
    split->setStretchFactor(0, 0);
    split->setStretchFactor(1, 1);
    split->setSizes({240, 660});
    split->setChildrenCollapsible(false);
    setCentralWidget(split);
    connect(sidebar_, &ConversationSidebar::conversationSelected, chat_,
            &ChatView::openConversation);
    connect(sidebar_, &ConversationSidebar::newChatRequested, chat_, &ChatView::newConversation);
    connect(sidebar_, &ConversationSidebar::conversationRemoved, this, [this](qint64 id) {
      if (chat_->conversationId() == id) chat_->newConversation();
    });
    connect(chat_, &ChatView::conversationChanged, sidebar_,
            &ConversationSidebar::setCurrentConversation);
    connect(store, &ConversationStore::errorOccurred, this, &MainWindow::showServiceStatus);
  } else {
    setCentralWidget(chat_);
  }
  status_->setObjectName(QStringLiteral("serviceStatus"));
  status_->setAccessibleName(tr("Service status"));
  statusBar()->addWidget(status_, 1);
  resize(900, 680);

  auto* file = menuBar()->addMenu(tr("&File"));
  auto* newChat = file->addAction(tr("&New chat"));
  newChat->setObjectName(QStringLiteral("newChatAction"));
  newChat->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_N));
  connect(newChat, &QAction::triggered, chat_, &ChatView::newConversation);
  if (sidebar_) {
    auto* find = file->addAction(tr("&Search chats"));
    find->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_F));
    connect(find, &QAction::triggered, sidebar_, &ConversationSidebar::focusSearch);
  }
  file->addSeparator();
  auto* settings = file->addAction(tr("S&ettings…"));
  settings->setObjectName(QStringLiteral("settingsAction"));
  settings->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Comma));
  settings->setMenuRole(QAction::PreferencesRole);
  connect(settings, &QAction::triggered, this, &MainWindow::settingsRequested);
  file->addSeparator();
  auto* quit = file->addAction(tr("&Quit"));
  quit->setShortcut(QKeySequence::Quit);
  connect(quit, &QAction::triggered, qApp, &QApplication::quit);

  auto* view = menuBar()->addMenu(tr("&View"));
  auto* monitor = view->addAction(tr("&Monitor"));
  monitor->setObjectName(QStringLiteral("showMonitor"));
  monitor->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_M));
  monitor->setToolTip(tr("Open the live tidal-lane monitor"));
  connect(monitor, &QAction::triggered, this, &MainWindow::monitorRequested);

  watchBackend();
}

void MainWindow::watchBackend() {
  connect(backend_, &ChatBackend::readyChanged, this, [this](bool ready) {
    if (ready) showServiceStatus(tr("Connected: %1").arg(backend_->describe()));
  });
  showServiceStatus(backend_->isReady() ? tr("Connected: %1").arg(backend_->describe())
                                        : tr("Starting…"));
}

void MainWindow::setBackend(ChatBackend* backend) {
  if (!backend || backend == backend_) return;
  disconnect(backend_, nullptr, this, nullptr);
  backend_ = backend;
  chat_->setBackend(backend);
  watchBackend();
}

void MainWindow::showServiceStatus(const QString& message) {
  status_->setText(message);
}

}  // namespace tidelane::ui
