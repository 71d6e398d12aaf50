// router/core: what the routing library offers, one header per concept.
#pragma once

#include "router/core/node_profile.h"  // NodeProfile, Tier: how fast a node of each class is
#include "router/core/policy.h"        // RoutingPolicy, NodeView, RequestView, MakePolicy
