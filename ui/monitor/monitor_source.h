// MonitorSource: where monitor frames come from (the router's MonitorService.Watch over
// gRPC in app/, a recording in tests). Keeps transport out of ui/.
//
// Threading: lives in the GUI thread; every signal is emitted in the GUI thread.
#pragma once

#include <QObject>
#include <QString>

#include "ui/monitor/monitor_frame.h"

namespace tidelane::ui::monitor {

class MonitorSource : public QObject {
  Q_OBJECT

 public:
  using QObject::QObject;

  // Where frames come from, for the status line ("router at 127.0.0.1:7443").
  virtual QString describe() const = 0;

 signals:
  void frameReceived(const tidelane::ui::monitor::MonitorFrame& frame);
  // Connected once frames flow; disconnected with a reason (it retries by itself).
  void connectionChanged(bool connected, const QString& message);
};

}  // namespace tidelane::ui::monitor
