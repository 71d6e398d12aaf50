#include "ui/main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QFileDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QRegularExpression>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QToolButton>

#include "ui/chat_view.h"
#include "ui/conversation_model.h"
#include "ui/conversation_sidebar.h"
#include "ui/shortcuts_dialog.h"

namespace tidelane::ui {

MainWindow::MainWindow(ChatBackend* backend, ConversationStore* store, QWidget* parent)
    : QMainWindow(parent),
      backend_(backend),
      chat_(new ChatView(backend, store, this)),
      status_(new QLabel(this)),
      store_(store) {
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
    split_ = split;
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
  auto* models = file->addAction(tr("&Models…"));
  models->setObjectName(QStringLiteral("modelsAction"));
  models->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_M));
  models->setToolTip(tr("Installed models, downloads and the model the bundled worker runs"));
  connect(models, &QAction::triggered, this, &MainWindow::modelsRequested);
  file->addSeparator();
  if (store) {
    auto* exportMd = file->addAction(tr("&Export chat as Markdown…"));
    exportMd->setObjectName(QStringLiteral("exportMarkdownAction"));
    exportMd->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_E));
    connect(exportMd, &QAction::triggered, this, [this] { exportCurrent(false); });
    auto* exportJson = file->addAction(tr("Export chat as &JSON…"));
    exportJson->setObjectName(QStringLiteral("exportJsonAction"));
    exportJson->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_E));
    connect(exportJson, &QAction::triggered, this, [this] { exportCurrent(true); });
    auto* import = file->addAction(tr("&Import chat…"));
    import->setObjectName(QStringLiteral("importAction"));
    import->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_O));
    connect(import, &QAction::triggered, this, [this] {
      const QString path = QFileDialog::getOpenFileName(this, tr("Import a conversation"), {},
                                                        tr("Tidelane conversation (*.json)"));
      if (!path.isEmpty()) emit importRequested(path);
    });
    file->addSeparator();
  }
  auto* quit = file->addAction(tr("&Quit"));
  quit->setShortcut(QKeySequence::Quit);
  connect(quit, &QAction::triggered, qApp, &QApplication::quit);

  auto* view = menuBar()->addMenu(tr("&View"));
  auto* monitor = view->addAction(tr("&Monitor"));
  monitor->setObjectName(QStringLiteral("showMonitor"));
  monitor->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_M));
  monitor->setToolTip(tr("Open the live tidal-lane monitor"));
  connect(monitor, &QAction::triggered, this, &MainWindow::monitorRequested);
  auto* node = view->addAction(tr("&Node panel"));
  node->setObjectName(QStringLiteral("showNodePanel"));
  node->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_N));
  node->setToolTip(tr("This machine's GPUs, CPU and memory, and the local worker (drain, cordon)"));
  connect(node, &QAction::triggered, this, &MainWindow::nodePanelRequested);
  auto* demo = view->addAction(tr("Surge &demo"));
  demo->setObjectName(QStringLiteral("showDemo"));
  demo->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_D));
  demo->setToolTip(tr("Fire the same surge at a naive and a tidal router, side by side"));
  connect(demo, &QAction::triggered, this, &MainWindow::demoRequested);

  auto* edit = menuBar()->addMenu(tr("&Edit"));
  auto* copyAnswer = edit->addAction(tr("&Copy last answer"));
  copyAnswer->setObjectName(QStringLiteral("copyLastAnswerAction"));
  copyAnswer->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_C));
  connect(copyAnswer, &QAction::triggered, this, [this] {
    const int row = chat_->model()->lastAnswerRow();
    if (row >= 0) chat_->copyMessage(row);
  });

  auto* help = menuBar()->addMenu(tr("&Help"));
  auto* keys = help->addAction(tr("&Keyboard shortcuts"));
  keys->setObjectName(QStringLiteral("shortcutsAction"));
  keys->setShortcuts({QKeySequence(Qt::Key_F1), QKeySequence(Qt::CTRL | Qt::Key_Slash)});
  connect(keys, &QAction::triggered, this, &MainWindow::showShortcuts);
  auto* welcome = help->addAction(tr("&Welcome to Tidelane…"));
  welcome->setObjectName(QStringLiteral("welcomeAction"));
  welcome->setToolTip(tr("What the bundled model is, and how to get a larger one"));
  connect(welcome, &QAction::triggered, this, &MainWindow::welcomeRequested);

  // Buttons Qt makes by itself have no name a screen reader could say: a line edit's clear
  // button and the menu bar's overflow button.
  for (QToolButton* b : findChildren<QToolButton*>()) {
    if (!b->accessibleName().isEmpty()) continue;
    if (b->inherits("QLineEditIconButton")) b->setAccessibleName(tr("Clear"));
    if (b->objectName() == QLatin1String("qt_menubar_ext_button"))
      b->setAccessibleName(tr("More menus"));
  }

  watchBackend();
}

void MainWindow::exportCurrent(bool json) {
  const qint64 id = chat_->conversationId();
  if (id <= 0) {
    showError(tr("Nothing to export"),
              tr("This chat is not stored yet: send a message, or choose a conversation."));
    return;
  }
  QString name = store_ ? store_->conversation(id).title : QString();
  static const QRegularExpression unsafe(QStringLiteral(R"([\\/:*?"<>|\s]+)"));
  name = name.replace(unsafe, QStringLiteral("-")).left(60);
  if (name.isEmpty()) name = tr("conversation");
  const QString path = QFileDialog::getSaveFileName(
      this, json ? tr("Export the chat as JSON") : tr("Export the chat as Markdown"),
      name + (json ? QStringLiteral(".json") : QStringLiteral(".md")),
      json ? tr("JSON (*.json)") : tr("Markdown (*.md)"));
  if (!path.isEmpty()) emit exportRequested(id, path, json);
}

void MainWindow::showError(const QString& title, const QString& message) {
  showServiceStatus(message);
  auto* box = new QMessageBox(QMessageBox::Warning, title, message, QMessageBox::Ok, this);
  box->setObjectName(QStringLiteral("errorBox"));
  box->setAccessibleName(title);
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->open();
}

void MainWindow::showShortcuts() {
  auto* dialog = new ShortcutsDialog(this, this);
  dialog->setAttribute(Qt::WA_DeleteOnClose);
  dialog->open();
}

void MainWindow::restoreWindowState() {
  QSettings s;
  if (const auto g = s.value(QStringLiteral("window/geometry")).toByteArray(); !g.isEmpty()) {
    restoreGeometry(g);
  }
  if (const auto st = s.value(QStringLiteral("window/state")).toByteArray(); !st.isEmpty()) {
    restoreState(st);
  }
  if (split_) {
    if (const auto sp = s.value(QStringLiteral("window/splitter")).toByteArray(); !sp.isEmpty()) {
      split_->restoreState(sp);
    }
  }
  const qint64 last = s.value(QStringLiteral("window/lastConversation")).toLongLong();
  // Only a conversation this history still holds (another --history-db has other ids).
  if (store_ && last > 0 && store_->conversation(last).id == last) chat_->openConversation(last);
}

void MainWindow::saveWindowState() const {
  QSettings s;
  s.setValue(QStringLiteral("window/geometry"), saveGeometry());
  s.setValue(QStringLiteral("window/state"), saveState());
  if (split_) s.setValue(QStringLiteral("window/splitter"), split_->saveState());
  s.setValue(QStringLiteral("window/lastConversation"), chat_->conversationId());
}

void MainWindow::closeEvent(QCloseEvent* event) {
  saveWindowState();
  QMainWindow::closeEvent(event);
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
