#include "app/grpc_monitor_client.h"

#include <grpcpp/create_channel.h>

#include <QLocale>
#include <algorithm>
#include <chrono>

#include "router/proto/auth.h"
#include "router/proto/tls.h"
#include "tidelane/v1/monitor.grpc.pb.h"

namespace tidelane::app {
namespace {

namespace m = ui::monitor;

m::Tier tierOf(v1::Tier t) {
  switch (t) {
    case v1::TIER_HIGH:
      return m::Tier::High;
    case v1::TIER_MID:
      return m::Tier::Mid;
    case v1::TIER_LOW:
      return m::Tier::Low;
    default:
      return m::Tier::Unknown;
  }
}

m::Role roleOf(v1::Lane l) {
  switch (l) {
    case v1::LANE_PREFILL:
      return m::Role::Prefill;
    case v1::LANE_DECODE:
      return m::Role::Decode;
    default:
      return m::Role::Mixed;
  }
}

m::NodeState stateOf(v1::NodeState s) {
  switch (s) {
    case v1::NODE_STATE_READY:
      return m::NodeState::Ready;
    case v1::NODE_STATE_DRAINING:
      return m::NodeState::Draining;
    case v1::NODE_STATE_CORDONED:
      return m::NodeState::Cordoned;
    case v1::NODE_STATE_DOWN:
      return m::NodeState::Down;
    default:
      return m::NodeState::Unknown;
  }
}

m::Stage stageOf(v1::Stage s) {
  switch (s) {
    case v1::STAGE_WHOLE:
      return m::Stage::Whole;
    case v1::STAGE_PREPROCESS:
      return m::Stage::Preprocess;
    case v1::STAGE_PREFILL:
      return m::Stage::Prefill;
    case v1::STAGE_DECODE:
      return m::Stage::Decode;
    case v1::STAGE_KV_TRANSFER:
      return m::Stage::KvTransfer;
    default:
      return m::Stage::Unknown;
  }
}

QString q(const std::string& s) {
  return QString::fromStdString(s);
}

QString gpuLine(const v1::GpuInfo& g) {
  const double gib = double(1ll << 30);
  return QObject::tr("%1: %2% · %3/%4 GiB · %5 °C · %6 W")
      .arg(q(g.name()))
      .arg(std::lround(g.utilisation() * 100))
      .arg(g.memory_used_bytes() / gib, 0, 'f', 1)
      .arg(g.memory_total_bytes() / gib, 0, 'f', 1)
      .arg(g.temperature_c(), 0, 'f', 0)
      .arg(g.power_w(), 0, 'f', 0);
}

}  // namespace

GrpcMonitorClient::GrpcMonitorClient(QObject* parent) : ui::monitor::MonitorSource(parent) {}

GrpcMonitorClient::~GrpcMonitorClient() {
  stop();
}

QString GrpcMonitorClient::describe() const {
  return tr("router at %1").arg(address_);
}

void GrpcMonitorClient::start(const QString& address, const QString& token, int intervalMs) {
  stop();
  address_ = address;
  token_ = token;
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread(&GrpcMonitorClient::run, this, address.toStdString(), token.toStdString(),
                        intervalMs, generation_);
}

void GrpcMonitorClient::stop() {
  if (policy_thread_.joinable()) policy_thread_.join();
  if (node_thread_.joinable()) node_thread_.join();
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (current_) current_->TryCancel();
  }
  wake_.notify_all();
  thread_.join();
  ++generation_;
}

void GrpcMonitorClient::requestPolicy(const QString& policy) {
  if (policy_thread_.joinable()) policy_thread_.join();
  if (address_.isEmpty()) {
    emit policiesReported({}, {}, tr("not connected to a router"));
    return;
  }
  const quint64 generation = generation_;
  policy_thread_ =
      std::thread([this, address = address_.toStdString(), token = token_.toStdString(),
                   name = policy.toStdString(), generation] {
        auto stub = v1::MonitorService::NewStub(channelTo(address));
        grpc::ClientContext context;
        auth::AttachBearer(context, token);
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        v1::SetPolicyRequest request;
        request.set_policy(name);
        v1::SetPolicyResponse response;
        const grpc::Status status = stub->SetPolicy(&context, request, &response);
        QStringList available;
        for (const auto& a : response.available()) available << q(a);
        const QString current = q(response.policy());
        const QString error = status.ok() ? QString() : q(status.error_message());
        QMetaObject::invokeMethod(
            this,
            [this, generation, current, available, error] {
              if (generation == generation_) emit policiesReported(current, available, error);
            },
            Qt::QueuedConnection);
      });
}

void GrpcMonitorClient::requestNodeState(const QString& node, m::NodeState state) {
  if (node_thread_.joinable()) node_thread_.join();
  if (address_.isEmpty()) {
    emit nodeStateReported(node, state, tr("not connected to a router"));
    return;
  }
  v1::NodeState wanted = v1::NODE_STATE_UNSPECIFIED;
  switch (state) {
    case m::NodeState::Ready:
      wanted = v1::NODE_STATE_READY;
      break;
    case m::NodeState::Draining:
      wanted = v1::NODE_STATE_DRAINING;
      break;
    case m::NodeState::Cordoned:
      wanted = v1::NODE_STATE_CORDONED;
      break;
    default:
      // The router would refuse it too; saying so here names the state the caller meant.
      emit nodeStateReported(node, state, tr("a node can only be resumed, drained or cordoned"));
      return;
  }
  const quint64 generation = generation_;
  node_thread_ = std::thread([this, address = address_.toStdString(), token = token_.toStdString(),
                              node, state, wanted, generation] {
    auto stub = v1::MonitorService::NewStub(channelTo(address));
    grpc::ClientContext context;
    auth::AttachBearer(context, token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::SetNodeStateRequest request;
    request.set_node(node.toStdString());
    request.set_state(wanted);
    v1::SetNodeStateResponse response;
    const grpc::Status status = stub->SetNodeState(&context, request, &response);
    QString error;
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
      error = tr("the router refused the token (%1)").arg(q(status.error_message()));
    } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
               status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      error = tr("the router at %1 did not answer (%2)").arg(q(address), q(status.error_message()));
    } else if (!status.ok()) {
      error = q(status.error_message());
    }
    QMetaObject::invokeMethod(
        this,
        [this, generation, node, state, error] {
          if (generation == generation_) emit nodeStateReported(node, state, error);
        },
        Qt::QueuedConnection);
  });
}

ui::monitor::MonitorFrame GrpcMonitorClient::toFrame(const v1::ClusterSnapshot& s) {
  m::MonitorFrame f;
  f.timestampMs = s.timestamp_ms();
  f.policy = q(s.policy());
  f.nodes.reserve(s.nodes_size());
  for (const auto& n : s.nodes()) {
    m::NodeFrame node;
    node.name = q(n.name());
    node.tier = tierOf(n.tier());
    node.role = roleOf(n.lane());
    node.state = stateOf(n.state());
    const auto& v = n.saturation();
    node.saturation.values = {
        v.prefill_backlog(), v.batch_occupancy(), v.kv_blocks(),          v.compute(),
        v.decode_latency(),  v.error_rate(),      v.kv_transfer_backlog()};
    node.active = static_cast<int>(n.active_requests());
    node.maxBatch = static_cast<int>(n.max_batch());
    node.servedTotal = static_cast<qint64>(n.served_total());
    node.tokensPerSecond = n.tokens_per_s();
    node.model = q(n.model());
    node.cpuUtilisation = n.hardware().cpu_utilisation();
    node.memoryUsedBytes = static_cast<qint64>(n.hardware().memory_used_bytes());
    node.memoryTotalBytes = static_cast<qint64>(n.hardware().memory_total_bytes());
    for (const auto& g : n.hardware().gpus()) node.gpus.append(gpuLine(g));
    f.nodes.append(std::move(node));
  }
  f.flows.reserve(s.flows_size());
  for (const auto& fl : s.flows()) {
    f.flows.append({q(fl.request_id()), q(fl.to_node()), stageOf(fl.stage())});
  }
  for (const auto& r : s.redirects()) {
    f.redirects.append({q(r.request_id()), q(r.from_node()), q(r.to_node()), q(r.reason())});
  }
  const auto& c = s.counters();
  f.counters = {static_cast<qint64>(c.accepted()),
                static_cast<qint64>(c.served()),
                static_cast<qint64>(c.degraded()),
                static_cast<qint64>(c.rejected()),
                static_cast<qint64>(c.failed()),
                static_cast<qint64>(c.redirects()),
                static_cast<int>(c.queued()),
                static_cast<int>(c.in_flight()),
                c.ttft_p50_ms(),
                c.ttft_p99_ms()};
  f.countArrivals();
  return f;
}

bool GrpcMonitorClient::setCaFile(const QString& caFile, QString* error) {
  caPem_.clear();
  if (caFile.isEmpty()) return true;
  try {
    caPem_ = tls::ReadPem(caFile.toStdString(), false);
    return true;
  } catch (const std::exception& e) {
    if (error) *error = QString::fromStdString(e.what());
    return false;
  }
}

std::shared_ptr<grpc::Channel> GrpcMonitorClient::channelTo(const std::string& address) const {
  if (caPem_.empty()) return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = caPem_;
  return grpc::CreateChannel(address, grpc::SslCredentials(options));
}

// Runs on the watch thread. Every emit is posted to the GUI thread with `this` as the
// context, so events still queued when the client is destroyed are dropped, and tagged with
// the generation, so those still queued when it is stopped are dropped too.
void GrpcMonitorClient::run(const std::string& address, const std::string& token, int intervalMs,
                            quint64 generation) {
  using namespace std::chrono_literals;
  const auto post = [this, generation](auto fn) {
    QMetaObject::invokeMethod(
        this,
        [this, generation, fn = std::move(fn)] {
          if (generation == generation_) fn();
        },
        Qt::QueuedConnection);
  };
  auto channel = channelTo(address);
  auto stub = v1::MonitorService::NewStub(channel);
  auto backoff = 250ms;
  bool connected = false;
  for (;;) {
    grpc::ClientContext context;
    auth::AttachBearer(context, token);
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
      current_ = &context;
    }
    v1::WatchRequest request;
    request.set_interval_ms(static_cast<std::uint32_t>(std::max(20, intervalMs)));
    auto reader = stub->Watch(&context, request);
    v1::ClusterSnapshot snapshot;
    while (reader->Read(&snapshot)) {
      if (!connected) {
        connected = true;
        post([this] { emit connectionChanged(true, {}); });
      }
      backoff = 250ms;
      post([this, frame = toFrame(snapshot)] { emit frameReceived(frame); });
    }
    const grpc::Status status = reader->Finish();
    {
      std::lock_guard lock(mu_);
      current_ = nullptr;
      if (stopping_) break;
    }
    connected = false;
    const QString why =
        status.ok() ? tr("the router ended the monitor stream") : q(status.error_message());
    const auto wait = backoff;
    post([this, why, wait] {
      emit connectionChanged(
          false,
          tr("Monitor disconnected (%1); retrying in %2 s")
              .arg(why, QLocale().toString(std::chrono::duration<double>(wait).count(), 'f', 2)));
    });
    std::unique_lock lock(mu_);
    if (wake_.wait_for(lock, backoff, [this] { return stopping_; })) break;
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5s);
  }
}

}  // namespace tidelane::app
