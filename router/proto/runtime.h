// Process-wide settings for running gRPC in a daemon, applied once at the top of main.
#pragma once

namespace tidelane::proto {

// Debian builds Abseil without NDEBUG, so every absl::Mutex (all of gRPC's locks) runs
// Abseil's lock-order deadlock detector, a debugging aid that takes a global lock, updates a
// graph and records a stack trace for each new mutex (gRPC makes several per call). Turns it
// off, as Abseil's release builds have it. Call before any thread starts.
void UseReleaseLocking();

}  // namespace tidelane::proto
