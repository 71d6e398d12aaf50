// MonitorFrame: one snapshot of the cluster as the monitor shows it, in plain Qt value
// types (the app converts the router's ClusterSnapshot into it; ui/ never sees protobuf).
//
// Value types only: copyable, cheap to pass by value (QString/QList share their data), no
// threads, no signals. Frames travel from the client thread to the GUI thread by value.
#pragma once

#include <QJsonObject>
#include <QList>
#include <QMetaType>
#include <QString>
#include <array>

namespace tidelane::ui::monitor {

// Hardware class of a node; lanes are grouped by it, High first.
enum class Tier { High, Mid, Low, Unknown };
// The role a node serves in right now; the lane controller moves nodes between them.
enum class Role { Prefill, Decode, Mixed };
enum class NodeState { Ready, Draining, Cordoned, Down, Unknown };
// Stage of one inference that a flow carries.
// KvTransfer: a split request's KV cache moving to its decode node (the same request's Decode
// flow follows), so it is not a new arrival there.
enum class Stage { Whole, Preprocess, Prefill, Decode, KvTransfer, Unknown };

// How saturated a node is: seven dimensions, each normalised so 1.0 = at its limit. The
// binding dimension (the largest) is the one that limits the node, and sets its level.
struct Saturation {
  static constexpr int kDimensions = 7;
  std::array<double, kDimensions> values{};  // in the order of dimensionName()

  // Index of the largest value (the first one on ties); 0 when all are zero.
  int bindingIndex() const;
  double binding() const { return values[static_cast<std::size_t>(bindingIndex())]; }
  // Translated name of dimension `i` ("prefill backlog", "KV cache", ...).
  static QString dimensionName(int i);
};

struct NodeFrame {
  QString name;
  Tier tier = Tier::Unknown;
  Role role = Role::Mixed;
  NodeState state = NodeState::Unknown;
  Saturation saturation;
  int active = 0;    // requests running on the node
  int maxBatch = 0;  // its batch capacity; the capacity the tide line weighs
  qint64 servedTotal = 0;
  double tokensPerSecond = 0;
  QString model;
  double cpuUtilisation = 0;  // 0..1 over all cores
  qint64 memoryUsedBytes = 0;
  qint64 memoryTotalBytes = 0;
  QStringList gpus;  // one line per GPU ("NAME 63% 12.1/24.0 GiB 71 °C"), empty without
  int arrivals = 0;  // flows to this node since the previous frame
};

struct FlowEvent {
  QString requestId;
  QString toNode;
  Stage stage = Stage::Whole;
};

struct RedirectEvent {
  QString requestId;
  QString fromNode;
  QString toNode;
  QString reason;
};

// A request prefilled on one node whose decode went to another: its KV cache crossed
// between the lanes. The router sends no such record; MonitorHistory derives it from the
// stages of the flows (HandoffTracker) and keeps one per pair of lanes per frame, so
// `count` is how many requests that one stands for and `requestId` the newest of them.
struct HandoffEvent {
  QString requestId;
  QString fromNode;  // where it was prefilled
  QString toNode;    // where it decodes
  qint64 timestampMs = 0;
  int count = 1;
};

// Router-wide totals since the router started (they restart at zero with the router).
struct Counters {
  qint64 accepted = 0;
  qint64 served = 0;
  qint64 degraded = 0;
  qint64 rejected = 0;
  qint64 failed = 0;
  qint64 redirects = 0;
  int queued = 0;    // waiting in the front door now
  int inFlight = 0;  // running on some node now
  // TTFT percentiles (ms, wait in line included) over the router's last 10 s; 0 when none.
  double ttftP50Ms = 0;
  double ttftP99Ms = 0;
};

struct MonitorFrame {
  qint64 timestampMs = 0;  // router wall clock, ms since the Unix epoch
  QString policy;
  QList<NodeFrame> nodes;
  // Requests sent to nodes since the previous frame. MonitorHistory drops these (it keeps
  // NodeFrame::arrivals) so ten minutes of a 10,000-user surge stay small.
  QList<FlowEvent> flows;
  QList<RedirectEvent> redirects;  // since the previous frame
  QList<HandoffEvent> handoffs;    // since the previous frame; filled by MonitorHistory
  Counters counters;

  const NodeFrame* node(const QString& name) const;  // null when absent
  int totalActive() const;
  // Share of capacity in the prefill lane: sum of max_batch over PREFILL nodes, plus half of
  // MIXED ones (they do both), over the same for PREFILL + DECODE. 0.5 with no capacity.
  double prefillShare() const;
  // Fills NodeFrame::arrivals from `flows`.
  void countArrivals();
};

// Straight interpolation from `a` to `b` at t in [0,1]: numbers move, everything discrete
// (names, roles, states, events) is b's. Nodes only in b appear at their b values.
MonitorFrame interpolate(const MonitorFrame& a, const MonitorFrame& b, double t);

// JSON for recorded fixtures and tools: {"timestampMs":..,"nodes":[..],..}. fromJson
// reports what is wrong in `error` (and returns false) rather than guessing.
QJsonObject toJson(const MonitorFrame& frame);
bool fromJson(const QJsonObject& json, MonitorFrame* frame, QString* error);

QString tierName(Tier tier);
QString roleName(Role role);
QString stateName(NodeState state);

}  // namespace tidelane::ui::monitor

Q_DECLARE_METATYPE(tidelane::ui::monitor::MonitorFrame)
