// DemoSource: the surge demo as the demo window sees it: two clusters, identical but for
// their routing policy (side 0 the naive baseline, side 1 tidal), each with a MonitorSource
// for its tidal-lane view, a scoreboard per side, and a caption that narrates what is
// happening. app/ implements it (DemoController: child processes, gRPC); the window only
// shows it and forwards the presenter's clicks. Keeps processes and transport out of ui/.
//
// Threading: lives in the GUI thread; every signal is emitted in the GUI thread.
#pragma once

#include <QObject>
#include <QString>

#include "ui/monitor/monitor_source.h"

namespace tidelane::ui::monitor {

// How the surge's users arrive.
enum class SurgePattern {
  Flash,  // all of them within 2 s
  Ramp,   // over 20 s, the arrival rate growing linearly from zero
  Trace,  // the Azure LLM conversation trace's arrivals and sizes, compressed into 20 s
};

struct SurgeSpec {
  int users = 1000;
  SurgePattern pattern = SurgePattern::Flash;
};

// What one side's users saw during the current (or last) surge. Live figures come from the
// router's snapshots; once the surge tool has checked every stream, `final` turns true and
// the figures are the tool's (served, p99 TTFT over the whole surge, lost).
struct DemoScore {
  qint64 users = 0;      // in this surge
  qint64 served = 0;     // answers completed
  double ttftP99Ms = 0;  // live: the router's last 10 s; final: the whole surge
  qint64 degraded = 0;   // served with a smaller answer to serve sooner
  qint64 rejected = 0;   // told to come back later
  qint64 failed = 0;     // ended with an error other than a reject
  qint64 lost = -1;      // ended with no answer and no error; -1 until the surge tool says
  double paralysedNodeSeconds = 0;  // summed over nodes: time at saturation >= 1
  int queued = 0;                   // waiting in the router's front door now
  int inFlight = 0;                 // running on some node now
  QStringList paralysedNow;         // nodes at saturation >= 1 in the newest snapshot
  bool final = false;
};

class DemoSource : public QObject {
  Q_OBJECT

 public:
  enum class State {
    Idle,      // nothing running
    Starting,  // clusters starting
    Ready,     // clusters up, no surge running
    Surging,   // a surge in progress
    Finished,  // the last surge is over; clusters still up for the next one
    Failed,    // something could not start or died; failed() said why
  };
  Q_ENUM(State)

  using QObject::QObject;

  // Side 0 is the naive router, side 1 the tidal one. The sources outlive the DemoSource's
  // clients (they are its members) and stay valid across runs.
  virtual MonitorSource* monitor(int side) = 0;
  virtual QString sideTitle(int side) const = 0;  // "Naive — round-robin"
  virtual DemoScore score(int side) const = 0;
  virtual State state() const = 0;
  virtual QString caption() const = 0;

  // Starts the clusters if they are not running, then fires `surge` at both at once.
  virtual void run(const SurgeSpec& surge) = 0;
  // Stops everything this demo started, at any moment, without blocking the GUI thread: it
  // returns at once and the processes exit in the background (the implementation makes sure
  // none outlives it).
  virtual void stop() = 0;

 signals:
  void stateChanged(tidelane::ui::monitor::DemoSource::State state);
  void scoreChanged(int side);
  void captionChanged(const QString& caption);
  // Something failed; `message` says what and where its log is. When it was a process (not
  // a choice that cannot run, such as a missing trace), everything is stopped and the state
  // is Failed.
  void failed(const QString& message);
};

}  // namespace tidelane::ui::monitor
