#include "router/sim/simulator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <optional>
#include <queue>
#include <unordered_map>

#include "router/core/prefix_index.h"
#include "router/core/work_stealing.h"

namespace tidelane::sim {
namespace {

using core::Lane;

enum class Ev : std::uint8_t {
  kArrival,
  kStepDone,
  kTransferDone,
  kTelemetry,
  kPoll,
  kLane,
  kSample,
  kFail
};

struct Event {
  double t;
  std::uint64_t seq;
  Ev type;
  std::uint32_t a;
  bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

struct Seq {
  std::uint32_t prefill_node = 0;
  std::uint32_t decode_node = 0;
  std::uint32_t node = 0;  // where it is now
  bool split = false;
  std::uint32_t prompt = 0;        // prompt tokens
  std::uint32_t prefill_left = 0;  // tokens still to (re)compute before decoding
  std::uint32_t generated = 0;
  std::uint32_t target = 0;      // tokens it will produce
  std::uint32_t blocks = 0;      // KV blocks held on its node
  std::uint32_t est_blocks = 0;  // what the router counted for it
  bool active = false;
};

struct Node {
  NodeSpec spec;
  Lane lane = Lane::kMixed;
  std::optional<Lane> pending;
  bool failed = false;
  std::deque<std::uint32_t> waiting;
  std::vector<std::uint32_t> running;
  std::uint32_t kv_used = 0;
  bool stepping = false;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> step_prefill;  // (request, tokens)
  std::vector<std::uint32_t> step_decode;
  double step_ms = 0;
  double last_decode_ms = 0;
  double busy_in_interval = 0;
  bool preempted_in_interval = false;
  double link_out_free = 0;  // its link is busy sending KV until then
  double link_in_free = 0;   // ... and receiving until then
  core::PrefixIndex cache;
  NodeRecord record;
};

class Simulation {
 public:
  Simulation(const Workload& w, const ClusterSpec& c, core::RouterSetup& r, const SimOptions& o)
      : w_(w), router_(r), o_(o), seqs_(w.requests.size()) {
    result_.router = r.name;
    result_.requests.resize(w.requests.size());
    for (std::size_t i = 0; i < w.requests.size(); ++i) {
      auto& rec = result_.requests[i];
      rec.arrival = w.requests[i].request.arrival_s;
      rec.user = w.requests[i].request.user;
      rec.surge = w.requests[i].surge;
    }
    nodes_.resize(c.nodes.size());
    view_.resize(c.nodes.size());
    for (std::uint32_t i = 0; i < c.nodes.size(); ++i) {
      nodes_[i].spec = c.nodes[i];
      nodes_[i].record.name = c.nodes[i].name;
      nodes_[i].record.tier = c.nodes[i].profile.tier;
      auto& v = view_[i];
      v.id = i;
      v.name = nodes_[i].spec.name;
      v.profile = &nodes_[i].spec.profile;
    }
  }

  SimResult Run() {
    for (std::uint32_t i = 0; i < w_.requests.size(); ++i)
      Push(w_.requests[i].request.arrival_s, Ev::kArrival, i);
    for (std::uint32_t n = 0; n < nodes_.size(); ++n) {
      // Reports are staggered across the interval, as independent workers' would be.
      Push(o_.report_interval_s * (n + 1) / nodes_.size(), Ev::kTelemetry, n);
    }
    if (router_.lanes) Push(o_.lane_interval_s, Ev::kLane, 0);
    Push(o_.series_bucket_s, Ev::kSample, 0);
    for (const auto& [name, t] : o_.failures) {
      for (std::uint32_t n = 0; n < nodes_.size(); ++n) {
        if (nodes_[n].spec.name == name) Push(t, Ev::kFail, n);
      }
    }
    const double horizon = w_.duration_s + o_.drain_limit_s;
    while (!events_.empty()) {
      const Event e = events_.top();
      events_.pop();
      if (e.t > horizon) break;
      now_ = e.t;
      switch (e.type) {
        case Ev::kArrival:
          Arrive(e.a);
          break;
        case Ev::kStepDone:
          StepDone(e.a);
          break;
        case Ev::kTransferDone:
          TransferDone(e.a);
          break;
        case Ev::kTelemetry:
          Report(e.a);
          break;
        case Ev::kPoll:
          poll_pending_ = false;
          Poll();
          break;
        case Ev::kLane:
          Lanes();
          break;
        case Ev::kSample:
          Sample();
          break;
        case Ev::kFail:
          Fail(e.a);
          break;
      }
      if (done_ + rejected_ + lost_ == w_.requests.size() && arrived_ == w_.requests.size()) break;
    }
    for (std::uint32_t i = 0; i < seqs_.size(); ++i) {
      auto& rec = result_.requests[i];
      if (rec.finish < 0 && !rec.rejected && !rec.lost) rec.lost = true;  // never finished
    }
    for (auto& n : nodes_) result_.nodes.push_back(n.record);
    result_.end_s = now_;
    return std::move(result_);
  }

 private:
  void Push(double t, Ev type, std::uint32_t a) { events_.push({t, next_event_++, type, a}); }

  core::ClusterView View() { return {view_, now_, o_.slo, held_prompt_tokens_}; }

  SeriesPoint& Bucket() {
    const auto b = static_cast<std::size_t>(now_ / o_.series_bucket_s);
    if (result_.series.size() <= b) {
      const auto old = result_.series.size();
      result_.series.resize(b + 1);
      for (std::size_t i = old; i <= b; ++i) result_.series[i].t = i * o_.series_bucket_s;
    }
    return result_.series[b];
  }

  void Arrive(std::uint32_t i) {
    ++arrived_;
    ++Bucket().arrivals;
    core::Request r = w_.requests[i].request;
    r.expected_output_tokens =
        static_cast<std::uint32_t>(std::min<double>(mean_output_, r.max_tokens));
    if (router_.lanes)
      router_.lanes->ObserveDemand(r.prompt_tokens, r.expected_output_tokens, now_);
    const auto offer = router_.admission->Offer(r, now_, View());
    auto& rec = result_.requests[i];
    // A router with its own front door tells every arrival its place in line at once.
    rec.accepted_event = router_.admission->Name() == std::string_view("tidal");
    switch (offer.kind) {
      case core::OfferResult::Kind::kNow:
        Dispatch(i, std::move(r), false);
        break;
      case core::OfferResult::Kind::kQueued:
        queued_requests_[r.id] = i;
        SchedulePoll();
        break;
      case core::OfferResult::Kind::kRejected:
        rec.rejected = true;
        ++rejected_;
        break;
    }
  }

  void SchedulePoll(double delay = 0.05) {
    if (poll_pending_) return;
    poll_pending_ = true;
    Push(now_ + delay, Ev::kPoll, 0);
  }

  void Poll() {
    released_.clear();
    router_.admission->Poll(now_, View(), released_);
    for (auto& rel : released_) {
      const auto it = queued_requests_.find(rel.request.id);
      const std::uint32_t i = it->second;
      queued_requests_.erase(it);
      if (rel.degraded) result_.requests[i].degraded = true;
      Dispatch(i, std::move(rel.request), rel.degraded);
    }
    auto held = std::move(held_);
    held_.clear();
    held_prompt_tokens_ = 0;
    for (auto& [i, r] : held) Dispatch(i, std::move(r), result_.requests[i].degraded);
    if (router_.admission->Queued() > 0 || !held_.empty()) SchedulePoll(0.1);
  }

  // Sends request i to where the policy says (or holds it when no node is accepting).
  void Dispatch(std::uint32_t i, core::Request r, bool degraded) {
    auto& rec = result_.requests[i];
    if (rec.dispatch < 0) rec.dispatch = now_;
    const auto view = View();
    const auto t0 = std::chrono::steady_clock::now();
    const auto placement = router_.policy->Route(r, view);
    result_.decision_ns.push_back(
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
    if (!placement) {
      held_prompt_tokens_ += r.prompt_tokens;
      held_.emplace_back(i, std::move(r));
      SchedulePoll(0.1);
      return;
    }
    router_.policy->OnPlaced(r, *placement, view);
    Seq& s = seqs_[i];
    const std::uint32_t cap = degraded ? std::min(r.max_tokens, w_.requests[i].output_tokens)
                                       : w_.requests[i].output_tokens;
    s = Seq{};
    s.active = true;
    s.prefill_node = placement->prefill;
    s.decode_node = placement->decode;
    s.node = placement->prefill;
    s.split = placement->Split();
    s.prompt = r.prompt_tokens;
    s.prefill_left = r.prompt_tokens;
    s.target = std::max(1u, std::min(cap, r.max_tokens));
    rec.split = s.split;
    const auto& pp = nodes_[s.prefill_node].spec.profile;
    s.est_blocks =
        (r.prompt_tokens + r.expected_output_tokens + pp.block_tokens - 1) / pp.block_tokens;
    auto& vp = view_[s.prefill_node];
    vp.sent_since_report++;
    vp.sent_prefill_tokens_since_report += r.prompt_tokens;
    vp.outstanding_prefill_tokens += r.prompt_tokens;
    vp.outstanding++;
    if (s.split) view_[s.decode_node].outstanding++;
    view_[s.decode_node].outstanding_blocks += s.est_blocks;
    nodes_[s.prefill_node].waiting.push_back(i);
    Kick(s.prefill_node);
  }

  // An idle node takes queued, not yet started requests from the most backlogged node.
  void Steal(std::uint32_t n) {
    Node& node = nodes_[n];
    const auto free = static_cast<std::uint32_t>(node.spec.profile.max_batch - node.running.size());
    const auto plan = core::PlanSteal(View(), n, free);
    if (!plan) return;
    Node& victim = nodes_[plan->victim];
    std::uint32_t moved = 0;
    for (auto it = victim.waiting.end(); it != victim.waiting.begin() && moved < plan->count;) {
      --it;
      Seq& s = seqs_[*it];
      if (s.split || s.generated > 0 || s.prefill_left != s.prompt) continue;
      auto& from = view_[plan->victim];
      auto& to = view_[n];
      from.outstanding -= std::min(from.outstanding, 1u);
      from.outstanding_prefill_tokens -=
          std::min<std::uint64_t>(from.outstanding_prefill_tokens, s.prompt);
      from.outstanding_blocks -= std::min<std::uint64_t>(from.outstanding_blocks, s.est_blocks);
      to.outstanding++;
      to.outstanding_prefill_tokens += s.prompt;
      to.outstanding_blocks += s.est_blocks;
      s.prefill_node = s.decode_node = s.node = n;
      node.waiting.push_back(*it);
      it = victim.waiting.erase(it);
      ++moved;
      ++result_.steals;
    }
  }

  void Kick(std::uint32_t n) {
    Node& node = nodes_[n];
    if (node.stepping || node.failed) return;
    const auto& p = node.spec.profile;
    if (router_.steals_work && node.waiting.empty() && node.running.size() < p.max_batch) Steal(n);
    // Admit waiting sequences while the batch and the KV cache have room.
    while (node.running.size() < p.max_batch && !node.waiting.empty()) {
      const std::uint32_t i = node.waiting.front();
      Seq& s = seqs_[i];
      const std::uint32_t context = s.prompt + s.generated;
      const std::uint32_t need = (context + p.block_tokens) / p.block_tokens;
      if (node.kv_used + need > p.kv_blocks) {
        if (node.running.empty() && need > p.kv_blocks) {  // can never fit here
          node.waiting.pop_front();
          Lose(i);
          continue;
        }
        break;
      }
      node.waiting.pop_front();
      node.kv_used += need;
      s.blocks = need;
      if (s.prefill_left == s.prompt && s.generated == 0) {
        const auto& blocks = w_.requests[i].request.prefix_blocks;
        const std::uint32_t cached = node.cache.Match(0, blocks) * p.block_tokens;
        s.prefill_left -= std::min(cached, s.prompt - 1);
      }
      node.running.push_back(i);
    }
    node.step_prefill.clear();
    node.step_decode.clear();
    std::uint32_t budget = p.prefill_chunk_tokens * (node.lane == Lane::kPrefill ? 4 : 1);
    std::uint32_t prefill_tokens = 0;
    for (const std::uint32_t i : node.running) {
      Seq& s = seqs_[i];
      if (s.prefill_left > 0) {
        if (budget == 0) continue;
        const std::uint32_t take = std::min(budget, s.prefill_left);
        budget -= take;
        prefill_tokens += take;
        node.step_prefill.emplace_back(i, take);
      } else {
        node.step_decode.push_back(i);
      }
    }
    if (node.step_prefill.empty() && node.step_decode.empty()) return;
    const double decode_ms =
        node.step_decode.empty()
            ? 0
            : p.DecodeStepMs(static_cast<std::uint32_t>(node.step_decode.size()));
    node.step_ms = decode_ms + 1000.0 * prefill_tokens / p.prefill_tokens_per_s;
    if (!node.step_decode.empty()) node.last_decode_ms = node.step_ms;
    node.stepping = true;
    Push(now_ + node.step_ms / 1000.0, Ev::kStepDone, n);
  }

  void StepDone(std::uint32_t n) {
    Node& node = nodes_[n];
    if (node.failed) return;
    node.stepping = false;
    node.busy_in_interval += node.step_ms / 1000.0;
    node.record.busy_s += node.step_ms / 1000.0;
    const auto& p = node.spec.profile;
    bool finished_any = false;
    for (const std::uint32_t i : node.step_decode) {
      Seq& s = seqs_[i];
      if (!s.active || s.node != n || s.blocks == 0) continue;  // preempted during this step
      ++s.generated;
      GrowKv(n, i);
      if (s.generated >= s.target) {
        Finish(n, i);
        finished_any = true;
      }
    }
    for (const auto& [i, tokens] : node.step_prefill) {
      Seq& s = seqs_[i];
      if (!s.active || s.node != n || s.blocks == 0) continue;
      s.prefill_left -= std::min(tokens, s.prefill_left);
      if (s.prefill_left > 0) continue;
      node.cache.Insert(0, p.kv_blocks / 2, w_.requests[i].request.prefix_blocks);
      if (s.generated == 0) {
        s.generated = 1;  // the prefill's last step yields the first token
        auto& rec = result_.requests[i];
        rec.first_token = now_;
        auto& vp = view_[s.prefill_node];
        vp.outstanding_prefill_tokens -=
            std::min<std::uint64_t>(s.prompt, vp.outstanding_prefill_tokens);
        if (s.generated >= s.target) {
          Finish(n, i);
          finished_any = true;
          continue;
        }
      }
      if (s.split && n == s.prefill_node && s.decode_node != n) Handoff(n, i);
    }
    if (finished_any) SchedulePoll(0);
    Kick(n);
  }

  void GrowKv(std::uint32_t n, std::uint32_t i) {
    Node& node = nodes_[n];
    Seq& s = seqs_[i];
    const auto& p = node.spec.profile;
    if (s.prompt + s.generated < s.blocks * p.block_tokens) return;
    if (node.kv_used < p.kv_blocks) {
      ++node.kv_used;
      ++s.blocks;
      return;
    }
    // Out of KV: preempt the newest running sequence (vLLM's recompute preemption).
    const std::uint32_t victim = node.running.back();
    Seq& v = seqs_[victim];
    node.running.pop_back();
    node.kv_used -= v.blocks;
    v.blocks = 0;
    v.prefill_left = v.prompt + v.generated;
    node.waiting.push_front(victim);
    node.preempted_in_interval = true;
    ++node.record.preemptions;
    if (victim != i && node.kv_used < p.kv_blocks) {
      ++node.kv_used;
      ++s.blocks;
    }
  }

  void Release(std::uint32_t n, std::uint32_t i) {
    Node& node = nodes_[n];
    Seq& s = seqs_[i];
    node.kv_used -= std::min(node.kv_used, s.blocks);
    s.blocks = 0;
    std::erase(node.running, i);
  }

  void Handoff(std::uint32_t n, std::uint32_t i) {
    Seq& s = seqs_[i];
    Release(n, i);
    auto& vp = view_[n];
    vp.outstanding -= std::min(vp.outstanding, 1u);
    // The KV cache leaves at the sender's bandwidth and arrives at the receiver's; each
    // link carries one transfer at a time, so transfers queue behind each other on both.
    Node& from = nodes_[n];
    Node& to = nodes_[s.decode_node];
    const double bytes = (s.prompt + s.generated) * from.spec.profile.kv_bytes_per_token;
    const double start = std::max({now_, from.link_out_free, to.link_in_free});
    from.link_out_free = start + bytes / (from.spec.profile.link_gbytes_per_s * 1e9);
    to.link_in_free = start + bytes / (std::min(from.spec.profile.link_gbytes_per_s,
                                                to.spec.profile.link_gbytes_per_s) *
                                       1e9);
    s.node = s.decode_node;
    Push(to.link_in_free, Ev::kTransferDone, i);
  }

  void TransferDone(std::uint32_t i) {
    Seq& s = seqs_[i];
    if (!s.active) return;
    if (nodes_[s.decode_node].failed) {
      Redirect(i, "decode node failed during KV handoff");
      return;
    }
    nodes_[s.decode_node].waiting.push_back(i);
    Kick(s.decode_node);
  }

  void Finish(std::uint32_t n, std::uint32_t i) {
    Seq& s = seqs_[i];
    Release(n, i);
    s.active = false;
    auto& rec = result_.requests[i];
    rec.finish = now_;
    rec.output = s.generated;
    ++done_;
    ++nodes_[n].record.served;
    auto& vd = view_[s.decode_node];
    vd.outstanding -= std::min(vd.outstanding, 1u);
    vd.outstanding_blocks -= std::min<std::uint64_t>(vd.outstanding_blocks, s.est_blocks);
    router_.admission->OnFinished(now_, now_ - rec.dispatch);
    mean_output_ = 0.99 * mean_output_ + 0.01 * s.generated;
    auto& b = Bucket();
    ++b.completions;
    const double ttft_ms = 1000.0 * (rec.first_token - rec.dispatch);
    b.ttft_ms.push_back(ttft_ms);
    const double tpot_ms =
        s.generated > 1 ? 1000.0 * (rec.finish - rec.first_token) / (s.generated - 1) : 0;
    if (ttft_ms <= o_.slo.ttft_ms && tpot_ms <= o_.slo.tpot_ms) ++b.good;
  }

  void Lose(std::uint32_t i) {
    Seq& s = seqs_[i];
    s.active = false;
    result_.requests[i].lost = true;
    ++lost_;
    auto& vd = view_[s.decode_node];
    vd.outstanding -= std::min(vd.outstanding, 1u);
    vd.outstanding_blocks -= std::min<std::uint64_t>(vd.outstanding_blocks, s.est_blocks);
    router_.admission->OnFinished(now_, now_ - std::max(0.0, result_.requests[i].dispatch));
  }

  // Only a router that keeps contexts outside the nodes (ours: the ledger) can resume a
  // request elsewhere; the published routers fail the request back to the client.
  void Redirect(std::uint32_t i, const char* /*reason*/) {
    Seq& s = seqs_[i];
    if (!router_.keeps_contexts) {
      Lose(i);
      return;
    }
    auto& vd = view_[s.decode_node];
    vd.outstanding -= std::min(vd.outstanding, 1u);
    vd.outstanding_blocks -= std::min<std::uint64_t>(vd.outstanding_blocks, s.est_blocks);
    core::Request r = w_.requests[i].request;
    r.expected_output_tokens = static_cast<std::uint32_t>(mean_output_);
    const auto view = View();
    const auto placement = router_.policy->Route(r, view);
    if (!placement) {
      Lose(i);
      return;
    }
    ++result_.redirects;
    ++result_.requests[i].redirects;
    // Resume at the next token index: the new node re-prefills the prompt and what was said.
    const std::uint32_t generated = s.generated;
    const std::uint32_t target = s.target;
    s = Seq{};
    s.active = true;
    s.prefill_node = s.decode_node = s.node = placement->decode;
    s.prompt = r.prompt_tokens;
    s.generated = generated;
    s.prefill_left = r.prompt_tokens + generated;
    s.target = target;
    s.est_blocks =
        (r.prompt_tokens + r.expected_output_tokens) / nodes_[s.node].spec.profile.block_tokens + 1;
    view_[s.node].outstanding++;
    view_[s.node].outstanding_blocks += s.est_blocks;
    nodes_[s.node].waiting.push_back(i);
    Kick(s.node);
  }

  void Fail(std::uint32_t n) {
    Node& node = nodes_[n];
    node.failed = true;
    node.stepping = false;
    view_[n].accepting = false;
    std::vector<std::uint32_t> victims(node.running.begin(), node.running.end());
    victims.insert(victims.end(), node.waiting.begin(), node.waiting.end());
    node.running.clear();
    node.waiting.clear();
    node.kv_used = 0;
    for (const std::uint32_t i : victims) {
      seqs_[i].blocks = 0;
      if (seqs_[i].split && seqs_[i].decode_node != n) {
        view_[n].outstanding -= std::min(view_[n].outstanding, 1u);
      }
      Redirect(i, "node failed");
    }
    view_[n].outstanding = 0;
    router_.policy->OnNodeReset(n);
  }

  // The node's true saturation, as its telemetry reports it.
  core::Saturation Measure(const Node& node) const {
    const auto& p = node.spec.profile;
    core::Saturation s;
    double queued = 0;
    for (const std::uint32_t i : node.waiting) queued += seqs_[i].prefill_left;
    for (const std::uint32_t i : node.running) queued += seqs_[i].prefill_left;
    s[core::Dim::kPrefillBacklog] = queued / p.prefill_tokens_per_s / 2.0;
    s[core::Dim::kBatch] =
        static_cast<double>(node.running.size() + node.waiting.size()) / p.max_batch;
    s[core::Dim::kKv] =
        static_cast<double>(node.kv_used) / p.kv_blocks + (node.preempted_in_interval ? 1.0 : 0.0);
    s[core::Dim::kCompute] = std::min(1.0, node.busy_in_interval / o_.report_interval_s);
    s[core::Dim::kDecodeLatency] = node.running.empty() ? 0 : node.last_decode_ms / o_.slo.tpot_ms;
    s[core::Dim::kKvTransfer] =
        std::max({0.0, node.link_out_free - now_, node.link_in_free - now_});
    return s;
  }

  void Report(std::uint32_t n) {
    Node& node = nodes_[n];
    if (!node.failed) {
      auto& v = view_[n];
      v.saturation = Measure(node);
      v.reported_at_s = now_;
      v.running = static_cast<std::uint32_t>(node.running.size());
      v.waiting = static_cast<std::uint32_t>(node.waiting.size());
      double queued = 0;
      for (const std::uint32_t i : node.waiting) queued += seqs_[i].prefill_left;
      v.queued_prefill_tokens = static_cast<std::uint64_t>(queued);
      v.kv_blocks_used = node.kv_used;
      v.sent_since_report = 0;
      v.sent_prefill_tokens_since_report = 0;
      const auto& s = v.saturation;
      if (s[core::Dim::kPrefillBacklog] >= 1 || s[core::Dim::kDecodeLatency] >= 1 ||
          s[core::Dim::kKv] >= 1) {
        node.record.paralysis_s += o_.report_interval_s;
      }
      node.busy_in_interval = 0;
      node.preempted_in_interval = false;
    }
    if (arrived_ < w_.requests.size() || done_ + rejected_ + lost_ < w_.requests.size()) {
      Push(now_ + o_.report_interval_s, Ev::kTelemetry, n);
    }
  }

  void Lanes() {
    for (std::uint32_t n = 0; n < nodes_.size(); ++n) {
      Node& node = nodes_[n];
      if (node.pending && node.running.empty() && node.waiting.empty()) {
        node.lane = view_[n].lane = *node.pending;
        node.pending.reset();
        view_[n].accepting = !node.failed;
        ++node.record.lane_moves;
      }
    }
    for (const auto& m : router_.lanes->Plan(View(), now_)) {
      Node& node = nodes_[m.node_id];
      if (node.failed || node.pending || node.lane == m.to) continue;
      node.pending = m.to;
      view_[m.node_id].accepting = false;  // drain first
    }
    if (arrived_ < w_.requests.size() || done_ + rejected_ + lost_ < w_.requests.size()) {
      Push(now_ + o_.lane_interval_s, Ev::kLane, 0);
    }
  }

  void Sample() {
    auto& b = Bucket();
    std::uint32_t waiting = 0;
    std::uint32_t running = 0;
    for (const auto& n : nodes_) {
      waiting += static_cast<std::uint32_t>(n.waiting.size());
      running += static_cast<std::uint32_t>(n.running.size());
      if (n.lane == Lane::kPrefill) ++b.prefill_lanes;
    }
    b.queued = static_cast<std::uint32_t>(router_.admission->Queued() + held_.size()) + waiting;
    b.in_flight = running;
    if (arrived_ < w_.requests.size() || done_ + rejected_ + lost_ < w_.requests.size()) {
      Push(now_ + o_.series_bucket_s, Ev::kSample, 0);
    }
  }

  const Workload& w_;
  core::RouterSetup& router_;
  SimOptions o_;
  std::vector<Seq> seqs_;
  std::vector<Node> nodes_;
  std::vector<core::NodeState> view_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::uint64_t next_event_ = 0;
  double now_ = 0;
  double mean_output_ = 256;
  bool poll_pending_ = false;
  std::size_t arrived_ = 0, done_ = 0, rejected_ = 0, lost_ = 0;
  std::unordered_map<std::uint64_t, std::uint32_t> queued_requests_;
  std::vector<core::Released> released_;
  std::vector<std::pair<std::uint32_t, core::Request>> held_;
  std::uint64_t held_prompt_tokens_ = 0;  // of the requests in held_
  SimResult result_;
};

}  // namespace

SimResult Simulate(const Workload& workload, const ClusterSpec& cluster, core::RouterSetup& router,
                   const SimOptions& options) {
  return Simulation(workload, cluster, router, options).Run();
}

}  // namespace tidelane::sim
