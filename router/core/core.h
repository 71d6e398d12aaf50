// router/core: what the routing library offers, one header per concept.
#pragma once

#include "router/core/admission.h"        // Admission: the front door (none, FIFO cap, tidal)
#include "router/core/baselines.h"        // the published routers we compare against
#include "router/core/cluster_view.h"     // NodeState, ClusterView, Placement, Slo, Lane
#include "router/core/flat_set.h"         // FlatSet: open-addressed set of hashes (hot path)
#include "router/core/lane_controller.h"  // LaneController: the tide moving node roles
#include "router/core/node_profile.h"     // NodeProfile, Tier: speed and capacity of a node class
#include "router/core/policy.h"           // RoutingPolicy: one routing decision
#include "router/core/prefix_index.h"     // PrefixIndex: which KV blocks each node holds
#include "router/core/random.h"           // Rng: seeded, platform-independent
#include "router/core/request.h"          // Request: what a decision may know of a request
#include "router/core/router_setup.h"     // RouterSetup, MakeRouter: policies by name
#include "router/core/saturation.h"       // Saturation: the per-node saturation vector
#include "router/core/tidal_policy.h"     // our policy
#include "router/core/work_stealing.h"    // PlanSteal: idle nodes take queued work
