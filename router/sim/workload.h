// Workloads for the simulator: the Azure LLM inference trace, synthetic Poisson and bursty
// arrivals, and surges of users each holding a multi-turn conversation. Every request carries
// its true answer length (which the router never sees) and the chained block hashes of its
// prompt, so prefix caches and prefix-aware routers have something real to work with.
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "router/core/request.h"

namespace tidelane::sim {

struct SimRequest {
  core::Request request;        // what the router sees; request.arrival_s is the arrival
  std::uint32_t output_tokens;  // what the model will really produce
  bool surge = false;           // part of an injected surge
};

struct Workload {
  std::string description;
  std::vector<SimRequest> requests;  // sorted by arrival
  double duration_s = 0;             // last arrival
};

// Reads TIMESTAMP,ContextTokens,GeneratedTokens rows (Azure LLM inference traces, Patel et al.,
// "Splitwise", ISCA 2024), times relative to the first row, keeping rows before
// `max_duration_s` (0 = all). Throws std::runtime_error with the line number on bad input.
Workload LoadAzureTrace(const std::string& path, double max_duration_s, std::uint64_t seed);
// The same from a stream; `name` appears in error messages.
Workload ParseAzureTrace(std::istream& in, const std::string& name, double max_duration_s,
                         std::uint64_t seed);

// Poisson arrivals at `rate` per second for `duration_s`, sizes drawn from a log-normal fit of
// the Azure conversation trace (median prompt ~1k, median answer ~200 tokens).
Workload Poisson(double rate, double duration_s, std::uint64_t seed);

// On/off bursts: Poisson at `high_rate` for `on_s`, then at `low_rate` for `off_s`, repeated.
Workload Bursty(double low_rate, double high_rate, double on_s, double off_s, double duration_s,
                std::uint64_t seed);

struct SurgeOptions {
  std::uint32_t users = 10000;
  double at_s = 60;
  double window_s = 10;  // first messages arrive uniformly within this window
  std::uint32_t max_turns = 3;
  double think_time_s = 20;          // mean pause between a user's turns (exponential)
  std::uint32_t system_prompts = 4;  // popular system prompts shared across users
};

// Adds a surge of users to `w`, each with 1..max_turns turns; turn k's prompt holds the shared
// system prompt and the whole conversation so far (so its blocks extend turn k-1's).
void AddSurge(Workload& w, const SurgeOptions& options, std::uint64_t seed);

}  // namespace tidelane::sim
