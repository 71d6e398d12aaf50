#include "ui/main_window.h"

#include <QAction>
#include <QApplication>
#include <QLabel>
#include <QMenuBar>
#include <QStatusBar>

#include "ui/chat_view.h"

namespace tidelane::ui {

MainWindow::MainWindow(ChatBackend* backend, QWidget* parent)
    : QMainWindow(parent),
      backend_(backend),
      chat_(new ChatView(backend, this)),
      status_(new QLabel(this)) {
  setWindowTitle(tr("Tidelane"));
  setCentralWidget(chat_);
  status_->setObjectName(QStringLiteral("serviceStatus"));
  status_->setAccessibleName(tr("Service status"));
  statusBar()->addWidget(status_, 1);
  resize(900, 680);

  auto* file = menuBar()->addMenu(tr("&File"));
  auto* quit = file->addAction(tr("&Quit"));
  quit->setShortcut(QKeySequence::Quit);
  connect(quit, &QAction::triggered, qApp, &QApplication::quit);

  auto* view = menuBar()->addMenu(tr("&View"));
  auto* monitor = view->addAction(tr("&Monitor"));
  monitor->setObjectName(QStringLiteral("showMonitor"));
  monitor->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_M));
  monitor->setToolTip(tr("Open the live tidal-lane monitor"));
  connect(monitor, &QAction::triggered, this, &MainWindow::monitorRequested);

  connect(backend_, &ChatBackend::readyChanged, this, [this](bool ready) {
    if (ready) showServiceStatus(tr("Connected: %1").arg(backend_->describe()));
  });
  showServiceStatus(backend_->isReady() ? tr("Connected: %1").arg(backend_->describe())
                                        : tr("Starting…"));
}

void MainWindow::showServiceStatus(const QString& message) {
  status_->setText(message);
}

}  // namespace tidelane::ui
