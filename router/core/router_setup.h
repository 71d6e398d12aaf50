// RouterSetup: a named router as a whole: its routing policy, its front door (admission),
// and whether the tidal lane controller runs. The names are what tidelane-sim --policies,
// tidelane-router --policy and SetPolicy accept.
//
//   tidal                  our policy, tidal admission, lanes
//   tidal-no-admission     ... without admission (ablation)
//   tidal-no-soft          ... argmin instead of softmax sampling (ablation)
//   tidal-no-lanes         ... without the lane controller (ablation)
//   tidal-no-split         ... never splitting prefill and decode (ablation)
//   tidal-no-degrade       ... never cutting the answers of long waiters (ablation)
//   round-robin, random, least-request, power-of-two, sglang-cache-aware, llm-d, dynamo-kv,
//   vllm-prefix            baselines as published (no admission)
//   <baseline>+admission   the same behind the generic FIFO concurrency cap
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/core/admission.h"
#include "router/core/lane_controller.h"
#include "router/core/policy.h"

namespace tidelane::core {

struct RouterSetup {
  std::string name;
  std::unique_ptr<RoutingPolicy> policy;
  std::unique_ptr<Admission> admission;
  std::unique_ptr<LaneController> lanes;  // null when lanes are off
  // Contexts live outside the nodes (the router's ledger), so a request on a failed node
  // resumes elsewhere at its next token; published routers fail it back to the client.
  bool keeps_contexts = false;
  bool steals_work = false;  // idle nodes take queued requests (PlanSteal)
};

// Every router name, ours first, then the baselines, then the baselines with admission.
std::vector<std::string> RouterNames();

// The router called `name`, seeded; nothing when there is no such router.
std::optional<RouterSetup> MakeRouter(std::string_view name, std::uint64_t seed);

}  // namespace tidelane::core
