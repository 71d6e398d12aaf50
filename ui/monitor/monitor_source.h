// MonitorSource: where monitor frames come from (the router's MonitorService.Watch over
// gRPC in app/, a recording in tests). Keeps transport out of ui/.
//
// Threading: lives in the GUI thread; every signal is emitted in the GUI thread.
#pragma once

#include <QObject>
#include <QString>
#include <QStringList>

#include "ui/monitor/monitor_frame.h"

namespace tidelane::ui::monitor {

class MonitorSource : public QObject {
  Q_OBJECT

 public:
  using QObject::QObject;

  // Where frames come from, for the status line ("router at 127.0.0.1:7443").
  virtual QString describe() const = 0;
  // Asks the router to route with `policy` (empty: only report). Answered by
  // policiesReported; a source that cannot switch policies answers with an error.
  virtual void requestPolicy(const QString& /*policy*/) {
    emit policiesReported({}, {}, tr("this source cannot switch policies"));
  }
  // Asks the router to put `node` in `state` (Ready resumes it, Draining, Cordoned). Answered
  // by nodeStateReported; a source that cannot do it answers with an error.
  virtual void requestNodeState(const QString& node, NodeState state) {
    emit nodeStateReported(node, state, tr("this source cannot change node states"));
  }

 signals:
  void frameReceived(const tidelane::ui::monitor::MonitorFrame& frame);
  // Connected once frames flow; disconnected with a reason (it retries by itself).
  void connectionChanged(bool connected, const QString& message);
  // The policy in force and those available, or an error saying why the request failed.
  void policiesReported(const QString& current, const QStringList& available, const QString& error);
  // The router took `node`'s new `state` (error empty), or why it did not.
  void nodeStateReported(const QString& node, tidelane::ui::monitor::NodeState state,
                         const QString& error);
};

}  // namespace tidelane::ui::monitor
