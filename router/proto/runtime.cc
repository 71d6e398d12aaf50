#include "router/proto/runtime.h"

#include <absl/synchronization/mutex.h>

namespace tidelane::proto {

void UseReleaseLocking() { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); }

}  // namespace tidelane::proto
