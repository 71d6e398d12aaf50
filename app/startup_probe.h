// StartupProbe: milestones of the app's start, for the cold-start benchmark (scripts/bench-app).
// Nothing happens unless TIDELANE_STARTUP_PROBE is set; then one line per milestone goes to
// stderr, each a wall-clock time in microseconds since the epoch, so a launcher that noted the
// time just before exec can subtract (the process's own clocks start too late to see exec and
// dynamic linking):
//   tidelane startup: main US      main() entered (before QApplication)
//   tidelane startup: painted US   the chat window's first paint began
//   tidelane startup: idle US      the event loop had nothing left to do after that paint: the
//                                  frame is on screen and keys and clicks are handled
//   tidelane startup: ready US     the chat backend is ready (bundled router and worker up)
// TIDELANE_STARTUP_PROBE=quit quits once `ready` was printed (the benchmark's runs).
//
// Threading: GUI thread only.
#pragma once

#include <QObject>

class QWidget;

namespace tidelane::ui {
class ChatBackend;
}

namespace tidelane::app {

class StartupProbe : public QObject {
  Q_OBJECT

 public:
  // Wall-clock microseconds since the epoch.
  static qint64 nowUs();
  // Starts watching `window` and `backend` when TIDELANE_STARTUP_PROBE is set (else returns
  // null); `mainUs` is nowUs() taken first thing in main().
  static StartupProbe* install(qint64 mainUs, QWidget* window, ui::ChatBackend* backend);

 protected:
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  StartupProbe(QWidget* window, ui::ChatBackend* backend, bool quit);
  void onIdle();
  void onReady(bool ready);
  void maybeQuit();

  QWidget* window_;
  bool quit_;
  bool painted_ = false;
  bool idle_ = false;
  bool ready_ = false;
};

}  // namespace tidelane::app
