// The routers people use today, each implemented from its public description (cited where it
// is implemented) behind the RoutingPolicy interface, so the simulator compares like with like.
// None of them holds requests back: as published they always place on some accepting node.
#pragma once

#include <cstdint>
#include <memory>

#include "router/core/policy.h"

namespace tidelane::core {

std::unique_ptr<RoutingPolicy> MakeRoundRobin();
std::unique_ptr<RoutingPolicy> MakeRandom(std::uint64_t seed);
std::unique_ptr<RoutingPolicy> MakeLeastRequest();
std::unique_ptr<RoutingPolicy> MakePowerOfTwo(std::uint64_t seed);
std::unique_ptr<RoutingPolicy> MakeSglangCacheAware();
std::unique_ptr<RoutingPolicy> MakeLlmd(std::uint64_t seed);
std::unique_ptr<RoutingPolicy> MakeDynamoKv(std::uint64_t seed);
std::unique_ptr<RoutingPolicy> MakeVllmPrefix(std::uint64_t seed);

}  // namespace tidelane::core
