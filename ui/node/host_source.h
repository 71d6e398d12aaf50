// HostSource: where this machine's hardware samples come from (app/ samples the worker's
// HardwareProbe off the GUI thread; tests may feed samples themselves). Keeps /proc and NVML
// out of ui/.
//
// Threading: lives in the GUI thread; sampled is emitted in the GUI thread.
#pragma once

#include <QObject>

#include "ui/node/host_sample.h"

namespace tidelane::ui::node {

class HostSource : public QObject {
  Q_OBJECT

 public:
  using QObject::QObject;

 signals:
  void sampled(const tidelane::ui::node::HostSample& sample);
};

}  // namespace tidelane::ui::node
