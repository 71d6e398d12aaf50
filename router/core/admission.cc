#include "router/core/admission.h"

#include <algorithm>
#include <deque>
#include <ext/pb_ds/assoc_container.hpp>
#include <ext/pb_ds/tree_policy.hpp>
#include <map>
#include <unordered_map>

namespace tidelane::core {

double SloConcurrency(const ClusterView& c) {
  double total = 0;
  for (const auto& n : c.nodes) {
    if (n.accepting) total += n.profile->BatchWithinTpot(c.slo.tpot_ms);
  }
  return total;
}

namespace {

class NoAdmission final : public Admission {
 public:
  std::string_view Name() const override { return "none"; }
  OfferResult Offer(const Request&, double, const ClusterView&) override {
    ++in_flight_;
    return {};
  }
  void Poll(double, const ClusterView&, std::vector<Released>&) override {}
  void OnFinished(double, double) override { --in_flight_; }
  bool Withdraw(std::uint64_t) override { return false; }
  std::uint32_t PositionOf(std::uint64_t) const override { return 0; }
  std::size_t Queued() const override { return 0; }
  std::size_t InFlight() const override { return in_flight_; }
  double CapacityInFlight() const override { return 1e18; }

 private:
  std::size_t in_flight_ = 0;
};

// A generic gateway concurrency limit: at most factor x (total max batch) in flight, the
// rest wait first come, first served. The same cap for every baseline isolates routing.
class FifoCap final : public Admission {
 public:
  explicit FifoCap(double factor) : factor_(factor) {}
  std::string_view Name() const override { return "fifo-cap"; }

  OfferResult Offer(const Request& r, double now, const ClusterView& c) override {
    Refresh(c);
    if (queue_.empty() && in_flight_ < cap_) {
      ++in_flight_;
      return {};
    }
    queue_.push_back({r, now});
    return {OfferResult::Kind::kQueued, static_cast<std::uint32_t>(queue_.size()), 0, 0};
  }
  void Poll(double now, const ClusterView& c, std::vector<Released>& out) override {
    Refresh(c);
    while (!queue_.empty() && in_flight_ < cap_) {
      out.push_back({std::move(queue_.front().first), false, now - queue_.front().second});
      queue_.pop_front();
      ++in_flight_;
    }
  }
  void OnFinished(double, double) override { --in_flight_; }
  bool Withdraw(std::uint64_t id) override {
    const auto it =
        std::find_if(queue_.begin(), queue_.end(), [&](const auto& q) { return q.first.id == id; });
    if (it == queue_.end()) return false;
    queue_.erase(it);
    return true;
  }
  std::uint32_t PositionOf(std::uint64_t id) const override {
    for (std::size_t i = 0; i < queue_.size(); ++i) {
      if (queue_[i].first.id == id) return static_cast<std::uint32_t>(i + 1);
    }
    return 0;
  }
  std::size_t Queued() const override { return queue_.size(); }
  std::size_t InFlight() const override { return in_flight_; }
  double CapacityInFlight() const override { return cap_; }

 private:
  void Refresh(const ClusterView& c) {
    double slots = 0;
    for (const auto& n : c.nodes) {
      if (n.accepting) slots += n.profile->max_batch;
    }
    cap_ = std::max(1.0, factor_ * slots);
  }
  double factor_;
  double cap_ = 1;
  std::size_t in_flight_ = 0;
  std::deque<std::pair<Request, double>> queue_;
};

// The tidal front door.
//  - Capacity: how many requests the cluster can run at once within the TPOT SLO
//    (SloConcurrency), corrected by Little's law L = X * W from the measured completion rate X
//    and service time W, so the bound follows what nodes really deliver.
//  - Order: a weighted fair queue (start-time fair queueing: each user's requests carry
//    virtual finish tags, interactive weight 4 vs batch 1) with every interactive request
//    ahead of every batch one, so one heavy user cannot starve the others.
//  - Waiting past degrade_after_s: released next with max_tokens cut (counted as degraded).
//  - Reject only when the expected wait exceeds reject_after_s or the hard memory bound.
class TidalAdmission final : public Admission {
 public:
  explicit TidalAdmission(const TidalAdmissionOptions& o) : o_(o) {}
  std::string_view Name() const override { return "tidal"; }

  OfferResult Offer(const Request& r, double now, const ClusterView& c) override {
    const bool fresh = Refresh(now, c);
    // A view up to 50 ms old still counts the prompts of requests that have since been
    // prefilled, even answered: with nobody in line, that must not queue a long prompt on an
    // idle cluster (nothing would release it before the next poll). Look again first.
    if (!fresh && queue_.empty() && !Fits(r)) Refresh(now, c, /*force=*/true);
    if (queue_.empty() && Fits(r)) {
      Admit(r);
      return {};
    }
    const double eta = EtaFor(queue_.size() + 1);
    if (queue_.size() >= o_.max_queued || eta > o_.reject_after_s) {
      return {OfferResult::Kind::kRejected, 0, eta, std::max(1.0, eta - o_.reject_after_s / 2)};
    }
    // Start-time fair queueing: a user's next tag starts where their last one finished or at
    // the current virtual time, whichever is later; cost is the request's expected tokens.
    const double weight = r.priority == Priority::kInteractive ? o_.interactive_weight : 1.0;
    double& last = user_finish_[r.user];
    const double start = std::max(virtual_time_, last);
    const double cost =
        (r.prompt_tokens / 8.0 + std::max<std::uint32_t>(1, r.expected_output_tokens)) / weight;
    last = start + cost;
    const Key key{r.priority == Priority::kInteractive ? 0 : 1, start, seq_++};
    order_.insert(key);
    queue_.emplace(key, Entry{r, now});
    index_[r.id] = key;
    return {OfferResult::Kind::kQueued, static_cast<std::uint32_t>(order_.order_of_key(key) + 1),
            eta, 0};
  }

  void Poll(double now, const ClusterView& c, std::vector<Released>& out) override {
    const bool fresh = Refresh(now, c);
    // The head of the line waits only on what the cluster holds now, not a stale count.
    if (!fresh && !order_.empty() && !Fits(queue_.at(*order_.begin()).request)) {
      Refresh(now, c, /*force=*/true);
    }
    while (!order_.empty() && Fits(queue_.at(*order_.begin()).request)) {
      const Key key = *order_.begin();
      order_.erase(order_.begin());
      auto node = queue_.extract(key);
      Entry& e = node.mapped();
      index_.erase(e.request.id);
      virtual_time_ = std::max(virtual_time_, key.tag);
      Released rel{std::move(e.request), false, now - e.since};
      if (rel.waited_s >= o_.degrade_after_s && rel.request.max_tokens > o_.degraded_max_tokens) {
        rel.degraded = true;
        rel.request.max_tokens = o_.degraded_max_tokens;
        rel.request.expected_output_tokens =
            std::min(rel.request.expected_output_tokens, o_.degraded_max_tokens);
      }
      Admit(rel.request);
      out.push_back(std::move(rel));
    }
  }

  void OnFinished(double now, double service_s) override {
    --in_flight_;
    // Exponentially weighted completion rate over ~5 s windows and mean service time.
    completions_in_window_ += 1;
    if (window_start_ < 0) window_start_ = now;
    if (now - window_start_ >= 1.0) {
      const double rate = completions_in_window_ / (now - window_start_);
      rate_ = rate_ <= 0 ? rate : 0.8 * rate_ + 0.2 * rate;
      window_start_ = now;
      completions_in_window_ = 0;
    }
    service_s_ = service_s_ <= 0 ? service_s : 0.95 * service_s_ + 0.05 * service_s;
  }

  bool Withdraw(std::uint64_t id) override {
    const auto it = index_.find(id);
    if (it == index_.end()) return false;
    order_.erase(it->second);
    queue_.erase(it->second);
    index_.erase(it);
    return true;
  }

  std::uint32_t PositionOf(std::uint64_t id) const override {
    const auto it = index_.find(id);
    return it == index_.end() ? 0 : static_cast<std::uint32_t>(order_.order_of_key(it->second) + 1);
  }
  std::size_t Queued() const override { return queue_.size(); }
  std::size_t InFlight() const override { return in_flight_; }
  double CapacityInFlight() const override { return cap_; }

 private:
  struct Key {
    int klass;  // 0 interactive, 1 batch
    double tag;
    std::uint64_t seq;
    bool operator<(const Key& o) const {
      if (klass != o.klass) return klass < o.klass;
      if (tag != o.tag) return tag < o.tag;
      return seq < o.seq;
    }
  };
  struct Entry {
    Request request;
    double since = 0;
  };
  // An order-statistics tree gives each waiter's place in line in O(log n).
  using OrderTree =
      __gnu_pbds::tree<Key, __gnu_pbds::null_type, std::less<Key>, __gnu_pbds::rb_tree_tag,
                       __gnu_pbds::tree_order_statistics_node_update>;

  // Two dimensions bound admission: running sequences (cap_) and prompt tokens waiting for
  // prefill, which may not exceed what the prefill-capable nodes clear in half the TTFT SLO;
  // so a surge of long prompts is held at the door instead of piling up on the nodes.
  bool Fits(const Request& r) const {
    if (in_flight_ >= cap_) return false;
    return pending_prefill_ <= 0 || pending_prefill_ + r.prompt_tokens <= prefill_budget_;
  }
  void Admit(const Request& r) {
    ++in_flight_;
    pending_prefill_ += r.prompt_tokens;
  }

  // At most every 50 ms unless forced: in a surge, arrivals come faster than the nodes'
  // counts change, and prompts admitted since the last look (counted by Admit) may not be on a
  // node yet; a forced look trusts the view. Says whether it looked.
  bool Refresh(double now, const ClusterView& c, bool force = false) {
    if (!force && now - refreshed_at_ < 0.05 && refreshed_at_ >= 0) return false;
    refreshed_at_ = now;
    auto pending = static_cast<double>(c.unplaced_prompt_tokens);
    double rate = 0;
    for (const auto& n : c.nodes) {
      pending += static_cast<double>(n.outstanding_prefill_tokens);
      if (n.accepting && n.lane != Lane::kDecode) rate += n.profile->prefill_tokens_per_s;
    }
    pending_prefill_ = pending;
    prefill_budget_ = rate * c.slo.ttft_ms / 1000.0 * 0.5;
    const double slo_slots = SloConcurrency(c);
    // Little's law: what the cluster really sustains, when measured, may lower the bound
    // (nodes slower than their spec) but never below half of it, so one slow window
    // cannot collapse admission.
    double cap = slo_slots;
    if (rate_ > 0 && service_s_ > 0)
      cap = std::clamp(rate_ * service_s_ * 1.1, 0.5 * slo_slots, slo_slots);
    cap_ = std::max(1.0, cap);
    return true;
  }

  double EtaFor(std::size_t position) const {
    // Requests ahead drain at the measured completion rate, or at capacity / service time.
    double rate = rate_;
    if (rate <= 0) rate = cap_ / std::max(1.0, service_s_ > 0 ? service_s_ : 5.0);
    return static_cast<double>(position) / std::max(rate, 1e-3);
  }

  TidalAdmissionOptions o_;
  double cap_ = 1;
  double pending_prefill_ = 0;
  double prefill_budget_ = 0;
  double refreshed_at_ = -1;
  std::size_t in_flight_ = 0;
  double rate_ = 0;
  double service_s_ = 0;
  double window_start_ = -1;
  double completions_in_window_ = 0;
  double virtual_time_ = 0;
  std::uint64_t seq_ = 0;
  OrderTree order_;
  std::map<Key, Entry> queue_;
  std::unordered_map<std::uint64_t, Key> index_;
  std::unordered_map<std::uint32_t, double> user_finish_;
};

}  // namespace

std::unique_ptr<Admission> MakeNoAdmission() {
  return std::make_unique<NoAdmission>();
}
std::unique_ptr<Admission> MakeFifoCap(double per_slot_factor) {
  return std::make_unique<FifoCap>(per_slot_factor);
}
std::unique_ptr<Admission> MakeTidalAdmission(const TidalAdmissionOptions& options) {
  return std::make_unique<TidalAdmission>(options);
}

}  // namespace tidelane::core
