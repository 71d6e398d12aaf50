// GrpcMonitorClient: ui::monitor::MonitorSource over a Tidelane router's MonitorService.
// Watch runs on a thread of its own; each ClusterSnapshot is converted to a MonitorFrame
// there and handed to the GUI thread (queued), where frameReceived is emitted. When the
// stream ends or the router cannot be reached it reconnects with a backoff (250 ms doubling
// to 5 s, back to 250 ms once frames flow again).
//
// Threading: create, call and destroy in the GUI thread. stop() (and the destructor)
// cancels the call, wakes the backoff and joins the thread, so no signal is emitted after
// it returns.
#pragma once

#include <QString>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "ui/monitor/monitor_source.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace tidelane::v1 {
class ClusterSnapshot;
}

namespace tidelane::app {

class GrpcMonitorClient : public ui::monitor::MonitorSource {
  Q_OBJECT

 public:
  explicit GrpcMonitorClient(QObject* parent = nullptr);
  ~GrpcMonitorClient() override;

  // Watches the router at `address` with `token`, a snapshot every `intervalMs`; restarts
  // the watch if one was running.
  void start(const QString& address, const QString& token, int intervalMs = 250);
  // The CA bundle (PEM) a remote router's certificate must chain to; empty: plaintext, as to
  // the bundled router. Read here, once; false (with *error saying why) when it is not a readable
  // PEM file, and then the client stays on plaintext. Takes effect at the next start().
  bool setCaFile(const QString& caFile, QString* error);
  void stop();
  bool isRunning() const { return thread_.joinable(); }

  QString describe() const override;
  // SetPolicy on a short-lived thread of its own (joined before the next one and by stop()).
  void requestPolicy(const QString& policy) override;
  // SetNodeState on a short-lived thread of its own, like requestPolicy (joined before the
  // next one and by stop()).
  void requestNodeState(const QString& node, ui::monitor::NodeState state) override;

  // Converts one snapshot (any thread; the tests and tools use it too).
  static ui::monitor::MonitorFrame toFrame(const v1::ClusterSnapshot& snapshot);

 private:
  void run(const std::string& address, const std::string& token, int intervalMs,
           quint64 generation);

  QString address_;
  QString token_;
  std::string caPem_;
  // A channel to `address` with this client's credentials (TLS when a CA was set).
  std::shared_ptr<grpc::Channel> channelTo(const std::string& address) const;
  std::thread policy_thread_;
  std::thread node_thread_;
  // Bumped by stop() (GUI thread): events the old thread queued before it was joined carry
  // the old value and are dropped on arrival.
  quint64 generation_ = 0;
  std::thread thread_;
  std::mutex mu_;  // guards the two below
  std::condition_variable wake_;
  bool stopping_ = false;
  grpc::ClientContext* current_ = nullptr;  // the Watch in progress, to cancel it
};

}  // namespace tidelane::app
