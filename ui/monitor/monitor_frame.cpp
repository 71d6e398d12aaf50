#include "ui/monitor/monitor_frame.h"

#include <QCoreApplication>
#include <QHash>
#include <QJsonArray>
#include <algorithm>

namespace tidelane::ui::monitor {
namespace {

QString trm(const char* s) {
  return QCoreApplication::translate("tidelane::ui::monitor", s);
}

double lerp(double a, double b, double t) {
  return a + (b - a) * t;
}

// Enum <-> JSON names are fixed ASCII keys, never translated: fixtures must load anywhere.
constexpr const char* kTierKeys[] = {"high", "mid", "low", "unknown"};
constexpr const char* kRoleKeys[] = {"prefill", "decode", "mixed"};
constexpr const char* kStateKeys[] = {"ready", "draining", "cordoned", "down", "unknown"};
constexpr const char* kStageKeys[] = {"whole",  "preprocess",  "prefill",
                                      "decode", "kv_transfer", "unknown"};

template <typename E, std::size_t N>
bool enumFromKey(const QString& key, const char* const (&keys)[N], E* out) {
  for (std::size_t i = 0; i < N; ++i) {
    if (key == QLatin1String(keys[i])) {
      *out = static_cast<E>(i);
      return true;
    }
  }
  return false;
}

template <typename E, std::size_t N>
QString keyOf(E e, const char* const (&keys)[N]) {
  const auto i = static_cast<std::size_t>(e);
  return i < N ? QString(QLatin1String(keys[i])) : QString();
}

}  // namespace

int Saturation::bindingIndex() const {
  return static_cast<int>(std::max_element(values.begin(), values.end()) - values.begin());
}

QString Saturation::dimensionName(int i) {
  switch (i) {
    case 0:
      return trm("prefill backlog");
    case 1:
      return trm("batch occupancy");
    case 2:
      return trm("KV cache");
    case 3:
      return trm("compute");
    case 4:
      return trm("decode latency");
    case 5:
      return trm("error rate");
    case 6:
      return trm("KV transfer backlog");
    default:
      return {};
  }
}

const NodeFrame* MonitorFrame::node(const QString& name) const {
  for (const auto& n : nodes) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

int MonitorFrame::totalActive() const {
  int total = 0;
  for (const auto& n : nodes) total += n.active;
  return total;
}

double MonitorFrame::prefillShare() const {
  double prefill = 0, decode = 0;
  for (const auto& n : nodes) {
    if (n.state == NodeState::Down) continue;
    const double capacity = std::max(1, n.maxBatch);
    switch (n.role) {
      case Role::Prefill:
        prefill += capacity;
        break;
      case Role::Decode:
        decode += capacity;
        break;
      case Role::Mixed:
        prefill += capacity / 2;
        decode += capacity / 2;
        break;
    }
  }
  return prefill + decode > 0 ? prefill / (prefill + decode) : 0.5;
}

void MonitorFrame::countArrivals() {
  QHash<QString, int> counts;
  for (const auto& f : flows) {
    if (f.stage != Stage::KvTransfer) ++counts[f.toNode];
  }
  for (auto& n : nodes) n.arrivals = counts.value(n.name);
}

MonitorFrame interpolate(const MonitorFrame& a, const MonitorFrame& b, double t) {
  t = std::clamp(t, 0.0, 1.0);
  if (t >= 1.0) return b;
  MonitorFrame out = b;
  out.timestampMs = a.timestampMs + static_cast<qint64>((b.timestampMs - a.timestampMs) * t);
  for (auto& n : out.nodes) {
    const NodeFrame* from = a.node(n.name);
    if (!from) continue;
    for (std::size_t i = 0; i < n.saturation.values.size(); ++i) {
      n.saturation.values[i] = lerp(from->saturation.values[i], n.saturation.values[i], t);
    }
    n.active = static_cast<int>(std::lround(lerp(from->active, n.active, t)));
    n.tokensPerSecond = lerp(from->tokensPerSecond, n.tokensPerSecond, t);
    n.cpuUtilisation = lerp(from->cpuUtilisation, n.cpuUtilisation, t);
  }
  return out;
}

QString tierName(Tier tier) {
  switch (tier) {
    case Tier::High:
      return trm("high");
    case Tier::Mid:
      return trm("mid");
    case Tier::Low:
      return trm("low");
    case Tier::Unknown:
      break;
  }
  return trm("unknown tier");
}

QString roleName(Role role) {
  switch (role) {
    case Role::Prefill:
      return trm("prefill");
    case Role::Decode:
      return trm("decode");
    case Role::Mixed:
      break;
  }
  return trm("mixed");
}

QString stateName(NodeState state) {
  switch (state) {
    case NodeState::Ready:
      return trm("ready");
    case NodeState::Draining:
      return trm("draining");
    case NodeState::Cordoned:
      return trm("cordoned");
    case NodeState::Down:
      return trm("down");
    case NodeState::Unknown:
      break;
  }
  return trm("unknown");
}

QJsonObject toJson(const MonitorFrame& f) {
  QJsonArray nodes;
  for (const auto& n : f.nodes) {
    QJsonArray sat;
    for (double v : n.saturation.values) sat.append(v);
    nodes.append(QJsonObject{{"name", n.name},
                             {"tier", keyOf(n.tier, kTierKeys)},
                             {"role", keyOf(n.role, kRoleKeys)},
                             {"state", keyOf(n.state, kStateKeys)},
                             {"saturation", sat},
                             {"active", n.active},
                             {"maxBatch", n.maxBatch},
                             {"servedTotal", n.servedTotal},
                             {"tokensPerSecond", n.tokensPerSecond},
                             {"model", n.model},
                             {"cpu", n.cpuUtilisation},
                             {"memoryUsed", n.memoryUsedBytes},
                             {"memoryTotal", n.memoryTotalBytes},
                             {"gpus", QJsonArray::fromStringList(n.gpus)},
                             {"arrivals", n.arrivals}});
  }
  QJsonArray flows;
  for (const auto& fl : f.flows) {
    flows.append(QJsonObject{
        {"id", fl.requestId}, {"to", fl.toNode}, {"stage", keyOf(fl.stage, kStageKeys)}});
  }
  QJsonArray redirects;
  for (const auto& r : f.redirects) {
    redirects.append(QJsonObject{
        {"id", r.requestId}, {"from", r.fromNode}, {"to", r.toNode}, {"reason", r.reason}});
  }
  const auto& c = f.counters;
  return QJsonObject{{"timestampMs", f.timestampMs},
                     {"policy", f.policy},
                     {"nodes", nodes},
                     {"flows", flows},
                     {"redirects", redirects},
                     {"counters", QJsonObject{{"accepted", c.accepted},
                                              {"served", c.served},
                                              {"degraded", c.degraded},
                                              {"rejected", c.rejected},
                                              {"failed", c.failed},
                                              {"redirects", c.redirects},
                                              {"queued", c.queued},
                                              {"inFlight", c.inFlight},
                                              {"ttftP50Ms", c.ttftP50Ms},
                                              {"ttftP99Ms", c.ttftP99Ms}}}};
}

bool fromJson(const QJsonObject& json, MonitorFrame* out, QString* error) {
  const auto fail = [error](const QString& why) {
    if (error) *error = why;
    return false;
  };
  if (!json.value("timestampMs").isDouble()) return fail(trm("frame without a timestampMs"));
  if (!json.value("nodes").isArray()) return fail(trm("frame without a nodes array"));
  MonitorFrame f;
  f.timestampMs = json.value("timestampMs").toInteger();
  f.policy = json.value("policy").toString();
  for (const auto& v : json.value("nodes").toArray()) {
    const QJsonObject o = v.toObject();
    NodeFrame n;
    n.name = o.value("name").toString();
    if (n.name.isEmpty()) return fail(trm("node without a name"));
    if (!enumFromKey(o.value("tier").toString(), kTierKeys, &n.tier) ||
        !enumFromKey(o.value("role").toString(), kRoleKeys, &n.role) ||
        !enumFromKey(o.value("state").toString(), kStateKeys, &n.state)) {
      return fail(trm("node %1 has an unknown tier, role or state").arg(n.name));
    }
    const QJsonArray sat = o.value("saturation").toArray();
    if (sat.size() != Saturation::kDimensions) {
      return fail(trm("node %1 needs %2 saturation values, has %3")
                      .arg(n.name)
                      .arg(Saturation::kDimensions)
                      .arg(sat.size()));
    }
    for (int i = 0; i < Saturation::kDimensions; ++i) {
      n.saturation.values[static_cast<std::size_t>(i)] = sat.at(i).toDouble();
    }
    n.active = o.value("active").toInt();
    n.maxBatch = o.value("maxBatch").toInt();
    n.servedTotal = o.value("servedTotal").toInteger();
    n.tokensPerSecond = o.value("tokensPerSecond").toDouble();
    n.model = o.value("model").toString();
    n.cpuUtilisation = o.value("cpu").toDouble();
    n.memoryUsedBytes = o.value("memoryUsed").toInteger();
    n.memoryTotalBytes = o.value("memoryTotal").toInteger();
    for (const auto& g : o.value("gpus").toArray()) n.gpus.append(g.toString());
    n.arrivals = o.value("arrivals").toInt();
    f.nodes.append(n);
  }
  for (const auto& v : json.value("flows").toArray()) {
    const QJsonObject o = v.toObject();
    FlowEvent fl{o.value("id").toString(), o.value("to").toString(), Stage::Unknown};
    enumFromKey(o.value("stage").toString(), kStageKeys, &fl.stage);
    f.flows.append(fl);
  }
  for (const auto& v : json.value("redirects").toArray()) {
    const QJsonObject o = v.toObject();
    f.redirects.append({o.value("id").toString(), o.value("from").toString(),
                        o.value("to").toString(), o.value("reason").toString()});
  }
  const QJsonObject c = json.value("counters").toObject();
  f.counters = {c.value("accepted").toInteger(), c.value("served").toInteger(),
                c.value("degraded").toInteger(), c.value("rejected").toInteger(),
                c.value("failed").toInteger(),   c.value("redirects").toInteger(),
                c.value("queued").toInt(),       c.value("inFlight").toInt(),
                c.value("ttftP50Ms").toDouble(), c.value("ttftP99Ms").toDouble()};
  *out = std::move(f);
  return true;
}

}  // namespace tidelane::ui::monitor
