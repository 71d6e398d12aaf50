// Names the calling thread as `top -H`, `perf` and debuggers show it (Linux keeps the first
// 15 bytes). The router's own threads say what they are; gRPC's keep gRPC's names.
#pragma once

#include <pthread.h>

namespace tidelane::server {

inline void NameThisThread(const char* name) {
  pthread_setname_np(pthread_self(), name);
}

}  // namespace tidelane::server
