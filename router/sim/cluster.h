// Cluster specifications for the simulator: named presets and a small JSON file format.
//
//   {"nodes": [{"profile": "high", "count": 4},
//              {"profile": "mid", "count": 2, "prefill_tokens_per_s": 2500, "max_batch": 8}]}
//
// Each entry takes a built-in profile (router/core/node_profile.h, figures cited there) and
// may override any of its numeric fields.
#pragma once

#include <istream>
#include <string>
#include <vector>

#include "router/core/node_profile.h"

namespace tidelane::sim {

struct NodeSpec {
  std::string name;  // "high-0", "mid-3", ...
  core::NodeProfile profile;
};

struct ClusterSpec {
  std::string name;
  std::vector<NodeSpec> nodes;
};

// Presets: "hetero-28" (4 high, 8 mid, 16 low), "hetero-7" (1 high, 2 mid, 4 low),
// "homo-high-8", "homo-mid-16". Returns an empty spec for an unknown name.
ClusterSpec ClusterPreset(const std::string& name);
std::vector<std::string> ClusterPresetNames();

// A preset name or the path of a JSON file as above. Throws std::runtime_error saying what is
// wrong (unknown preset, unreadable file, bad JSON, unknown profile or field).
ClusterSpec LoadCluster(const std::string& preset_or_path);
// A JSON cluster description from a stream; `name` appears in error messages.
ClusterSpec ParseCluster(std::istream& in, const std::string& name);

}  // namespace tidelane::sim
