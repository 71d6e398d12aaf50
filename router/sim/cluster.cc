#include "router/sim/cluster.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace tidelane::sim {
namespace {

void AddNodes(ClusterSpec& c, const std::string& profile, int count) {
  const auto p = core::FindProfile(profile);
  if (!p) throw std::runtime_error("unknown node profile '" + profile + "' (high, mid or low)");
  for (int i = 0; i < count; ++i) c.nodes.push_back({profile + "-" + std::to_string(i), *p});
}

}  // namespace

std::vector<std::string> ClusterPresetNames() {
  return {"hetero-28", "hetero-7", "homo-high-8", "homo-mid-16"};
}

ClusterSpec ClusterPreset(const std::string& name) {
  ClusterSpec c;
  c.name = name;
  if (name == "hetero-28") {
    AddNodes(c, "high", 4);
    AddNodes(c, "mid", 8);
    AddNodes(c, "low", 16);
  } else if (name == "hetero-7") {
    AddNodes(c, "high", 1);
    AddNodes(c, "mid", 2);
    AddNodes(c, "low", 4);
  } else if (name == "homo-high-8") {
    AddNodes(c, "high", 8);
  } else if (name == "homo-mid-16") {
    AddNodes(c, "mid", 16);
  } else {
    c.name.clear();
  }
  return c;
}

ClusterSpec LoadCluster(const std::string& preset_or_path) {
  if (auto c = ClusterPreset(preset_or_path); !c.nodes.empty()) return c;
  std::ifstream in(preset_or_path);
  if (!in) {
    throw std::runtime_error("'" + preset_or_path +
                             "' is neither a cluster preset nor a readable file");
  }
  return ParseCluster(in, preset_or_path);
}

ClusterSpec ParseCluster(std::istream& in, const std::string& preset_or_path) {
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(preset_or_path + ": not valid JSON: " + e.what());
  }
  ClusterSpec c;
  c.name = preset_or_path;
  if (!j.is_object() || !j.contains("nodes") || !j["nodes"].is_array()) {
    throw std::runtime_error(preset_or_path + ": expected {\"nodes\": [...]}");
  }
  for (const auto& entry : j["nodes"]) {
    if (!entry.is_object() || !entry.contains("profile") || !entry["profile"].is_string()) {
      throw std::runtime_error(preset_or_path + ": each node entry needs a \"profile\"");
    }
    const std::string profile = entry["profile"];
    const auto& count_field = entry.contains("count") ? entry["count"] : nlohmann::json(1);
    if (!count_field.is_number_integer()) {
      throw std::runtime_error(preset_or_path + ": \"count\" must be an integer");
    }
    const auto count = count_field.get<std::int64_t>();
    if (count < 1 || count > 100000)
      throw std::runtime_error(preset_or_path + ": count must be 1..100000");
    const std::size_t first = c.nodes.size();
    AddNodes(c, profile, static_cast<int>(count));
    for (std::size_t i = first; i < c.nodes.size(); ++i) {
      auto& p = c.nodes[i].profile;
      for (const auto& [key, value] : entry.items()) {
        if (key == "profile" || key == "count") continue;
        if (!value.is_number() || !(value.get<double>() > 0) || value.get<double>() > 1e9) {
          throw std::runtime_error(preset_or_path + ": \"" + key +
                                   "\" must be a positive number up to 1e9");
        }
        const double v = value.get<double>();
        if (key == "prefill_tokens_per_s")
          p.prefill_tokens_per_s = v;
        else if (key == "decode_ms_per_token")
          p.decode_ms_per_token = v;
        else if (key == "decode_ms_per_extra_seq")
          p.decode_ms_per_extra_seq = v;
        else if (key == "max_batch")
          p.max_batch = static_cast<std::uint32_t>(v);
        else if (key == "kv_blocks")
          p.kv_blocks = static_cast<std::uint32_t>(v);
        else if (key == "link_gbytes_per_s")
          p.link_gbytes_per_s = v;
        else if (key == "prefill_chunk_tokens")
          p.prefill_chunk_tokens = static_cast<std::uint32_t>(v);
        else
          throw std::runtime_error(preset_or_path + ": unknown node field \"" + key + "\"");
      }
    }
  }
  if (c.nodes.empty()) throw std::runtime_error(preset_or_path + ": the cluster has no nodes");
  return c;
}

}  // namespace tidelane::sim
