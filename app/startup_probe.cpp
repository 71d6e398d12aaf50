#include "app/startup_probe.h"

#include <QAbstractEventDispatcher>
#include <QCoreApplication>
#include <QEvent>
#include <QTimer>
#include <QWidget>
#include <chrono>
#include <cstdio>

#include "ui/chat_backend.h"

namespace tidelane::app {
namespace {

void print(const char* what, qint64 us) {
  std::fprintf(stderr, "tidelane startup: %s %lld\n", what, static_cast<long long>(us));
  std::fflush(stderr);
}

}  // namespace

qint64 StartupProbe::nowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

StartupProbe* StartupProbe::install(qint64 mainUs, QWidget* window, ui::ChatBackend* backend) {
  const QByteArray mode = qgetenv("TIDELANE_STARTUP_PROBE");
  if (mode.isEmpty() || !window || !backend) return nullptr;
  print("main", mainUs);
  return new StartupProbe(window, backend, mode == "quit");
}

StartupProbe::StartupProbe(QWidget* window, ui::ChatBackend* backend, bool quit)
    : QObject(window), window_(window), quit_(quit) {
  // On the application: the window's children paint it, and which gets the first Paint
  // depends on the style. Removed after that paint.
  qApp->installEventFilter(this);
  connect(backend, &ui::ChatBackend::readyChanged, this, &StartupProbe::onReady);
  // A backend that is ready before the window is shown (a remote router answering at once).
  if (backend->isReady()) onReady(true);
  // aboutToBlock: the loop has handled everything queued and is about to wait for input.
  connect(QAbstractEventDispatcher::instance(), &QAbstractEventDispatcher::aboutToBlock, this,
          &StartupProbe::onIdle);
}

bool StartupProbe::eventFilter(QObject* watched, QEvent* event) {
  if (!painted_ && event->type() == QEvent::Paint && watched->isWidgetType() &&
      static_cast<QWidget*>(watched)->window() == window_) {
    painted_ = true;
    print("painted", nowUs());
    qApp->removeEventFilter(this);
  }
  return QObject::eventFilter(watched, event);
}

void StartupProbe::onIdle() {
  if (!painted_ || idle_) return;
  idle_ = true;
  print("idle", nowUs());
  maybeQuit();
}

void StartupProbe::onReady(bool ready) {
  if (!ready || ready_) return;
  ready_ = true;
  print("ready", nowUs());
  maybeQuit();
}

void StartupProbe::maybeQuit() {
  // After the current event, so the loop that quits is the running one.
  if (quit_ && idle_ && ready_) QTimer::singleShot(0, qApp, &QCoreApplication::quit);
}

}  // namespace tidelane::app
