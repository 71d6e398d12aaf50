// tidelane-router and tidelane-worker as real child processes, spoken to over real
// loopback gRPC: a chat streams Accepted, Routed, every token in order and Done; wrong or
// missing tokens are refused on every service; a worker killed mid-answer hands the rest
// of the answer to another worker with nothing lost and nothing repeated.
#include <grpcpp/create_channel.h>
#include <signal.h>

#include <QProcess>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include "app/service_supervisor.h"
#include "router/proto/auth.h"
#include "router/worker/synthetic_engine.h"
#include "tidelane/v1/chat.grpc.pb.h"
#include "tidelane/v1/monitor.grpc.pb.h"
#include "tidelane/v1/registry.grpc.pb.h"

using namespace tidelane;

namespace {

v1::ChatRequest makeRequest(const std::string& id, const std::string& text,
                            unsigned maxTokens = 0) {
  v1::ChatRequest r;
  r.set_request_id(id);
  r.set_user("tester");
  auto* m = r.add_messages();
  m->set_role("user");
  m->set_content(text);
  if (maxTokens) r.mutable_sampling()->set_max_tokens(maxTokens);
  return r;
}

std::vector<std::string> expectedAnswer(const v1::ChatRequest& r) {
  std::vector<worker::Message> messages;
  for (const auto& m : r.messages()) messages.push_back({m.role(), m.content()});
  return worker::SyntheticEngine::AnswerTokens(messages, r.sampling().max_tokens());
}

}  // namespace

class TestRouterWorker : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir data_;
  std::unique_ptr<app::ServiceSupervisor> services_;
  std::shared_ptr<grpc::Channel> channel_;

  void withToken(grpc::ClientContext& c) {
    auth::AttachBearer(c, services_->token().toStdString());
  }

  // Starts one more synthetic worker joined to the router; returns once it is ready.
  bool startWorker(QProcess& worker, const char* profile, const char* name) {
    worker.setProgram(QStringLiteral(TIDELANE_BIN_DIR "/tidelane-worker"));
    worker.setArguments({QStringLiteral("--router"), services_->grpcAddress(),
                         QStringLiteral("--auth-token-file"), services_->tokenFile(),
                         QStringLiteral("--profile"), QString::fromLatin1(profile),
                         QStringLiteral("--name"), QString::fromLatin1(name)});
    worker.start();
    if (!worker.waitForStarted()) return false;
    QByteArray out;
    return QTest::qWaitFor(
        [&] { return (out += worker.readAllStandardOutput()).contains("ready"); }, 20000);
  }

  // Cordons, drains or resumes a node through MonitorService.SetNodeState.
  grpc::Status setState(const char* node, v1::NodeState state) {
    auto monitor = v1::MonitorService::NewStub(channel_);
    grpc::ClientContext c;
    withToken(c);
    v1::SetNodeStateRequest req;
    req.set_node(node);
    req.set_state(state);
    v1::SetNodeStateResponse res;
    return monitor->SetNodeState(&c, req, &res);
  }

  // Reads the whole stream of a Chat call.
  std::vector<v1::ChatEvent> chat(const v1::ChatRequest& request, grpc::Status* status) {
    auto stub = v1::ChatService::NewStub(channel_);
    grpc::ClientContext c;
    withToken(c);
    auto reader = stub->Chat(&c, request);
    std::vector<v1::ChatEvent> events;
    for (v1::ChatEvent e; reader->Read(&e);) events.push_back(e);
    *status = reader->Finish();
    return events;
  }

 private slots:
  void initTestCase() {
    QVERIFY(data_.isValid());
    app::ServiceSupervisor::Options o;
    o.binDir = QStringLiteral(TIDELANE_BIN_DIR);
    o.dataDir = data_.path();
    o.workerProfile = QStringLiteral("high");
    o.workerName = QStringLiteral("local");
    services_ = std::make_unique<app::ServiceSupervisor>(o);
    QSignalSpy ready(services_.get(), &app::ServiceSupervisor::ready);
    services_->start();
    QVERIFY(ready.wait(30000));
    channel_ = grpc::CreateChannel(services_->grpcAddress().toStdString(),
                                   grpc::InsecureChannelCredentials());
  }

  void cleanupTestCase() { services_.reset(); }

  void chatStreamsAcceptedRoutedTokensDone() {
    const auto request = makeRequest("rw-1", "What does the tide do?");
    grpc::Status status;
    const auto events = chat(request, &status);
    QVERIFY2(status.ok(), status.error_message().c_str());
    QVERIFY(events.size() >= 4);
    QVERIFY(events.front().has_accepted());
    QCOMPARE(events.front().accepted().queue_position(), 0u);
    QVERIFY(events[1].has_routed());
    QCOMPARE(events[1].routed().node(), std::string("local"));
    QVERIFY(events.back().has_done());
    std::vector<std::string> tokens;
    for (const auto& e : events) {
      QCOMPARE(e.request_id(), std::string("rw-1"));
      if (e.has_token()) {
        QCOMPARE(e.token().index(), static_cast<unsigned>(tokens.size()));
        tokens.push_back(e.token().text());
      }
    }
    QCOMPARE(tokens, expectedAnswer(request));
    QCOMPARE(events.back().done().usage().completion_tokens(),
             static_cast<unsigned>(tokens.size()));
    QVERIFY(events.back().done().timings().ttft_ms() > 0);
    QVERIFY(events.back().done().timings().total_ms() >= events.back().done().timings().ttft_ms());
  }

  void wrongOrMissingTokenIsRefusedEverywhere() {
    for (const char* token : {"wrong-token", ""}) {
      const auto attach = [&](grpc::ClientContext& c) {
        if (*token) auth::AttachBearer(c, token);
      };
      {
        auto stub = v1::ChatService::NewStub(channel_);
        grpc::ClientContext c;
        attach(c);
        auto reader = stub->Chat(&c, makeRequest("bad", "hi"));
        v1::ChatEvent e;
        QVERIFY(!reader->Read(&e));
        QCOMPARE(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
      }
      {
        auto stub = v1::MonitorService::NewStub(channel_);
        grpc::ClientContext c;
        attach(c);
        v1::SetPolicyRequest req;
        req.set_policy("round-robin");
        v1::SetPolicyResponse res;
        QCOMPARE(stub->SetPolicy(&c, req, &res).error_code(), grpc::StatusCode::UNAUTHENTICATED);
      }
      {
        auto stub = v1::RegistryService::NewStub(channel_);
        grpc::ClientContext c;
        attach(c);
        auto stream = stub->Connect(&c);
        v1::WorkerMessage hello;
        hello.mutable_register_()->set_name("intruder");
        hello.mutable_register_()->set_address("127.0.0.1:1");
        hello.mutable_register_()->set_max_batch(1);
        stream->Write(hello);
        stream->WritesDone();
        v1::RouterDirective d;
        QVERIFY(!stream->Read(&d));
        QCOMPARE(stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
      }
    }
  }

  void invalidRequestsGetClearErrors() {
    grpc::Status status;
    v1::ChatRequest noUser = makeRequest("bad-1", "hi");
    noUser.mutable_messages(0)->set_role("system");
    chat(noUser, &status);
    QCOMPARE(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    QVERIFY(status.error_message().find("user") != std::string::npos);

    v1::ChatRequest huge = makeRequest("bad-2", std::string(2 << 20, 'x'));
    chat(huge, &status);
    QCOMPARE(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }

  void monitorSeesTheWorkerAndTheServedRequest() {
    auto stub = v1::MonitorService::NewStub(channel_);
    grpc::ClientContext c;
    withToken(c);
    v1::WatchRequest req;
    req.set_interval_ms(50);
    auto reader = stub->Watch(&c, req);
    v1::ClusterSnapshot s;
    QVERIFY(reader->Read(&s));
    QCOMPARE(s.nodes_size(), 1);
    QCOMPARE(s.nodes(0).name(), std::string("local"));
    QCOMPARE(s.nodes(0).tier(), v1::TIER_HIGH);
    QVERIFY(s.counters().served() >= 1);
    c.TryCancel();
  }

  // A second, slow worker takes the request while "local" is cordoned; it is killed with
  // SIGKILL after a few tokens and the router must finish the answer on "local".
  void killedWorkerMidAnswerIsRedirectedWithoutLoss() {
    QProcess second;
    QVERIFY(startWorker(second, "low", "second"));

    QVERIFY(setState("local", v1::NODE_STATE_CORDONED).ok());

    const auto request = makeRequest("rw-failover", "A long story about the sea, please.", 30);
    auto stub = v1::ChatService::NewStub(channel_);
    grpc::ClientContext c;
    withToken(c);
    auto reader = stub->Chat(&c, request);
    std::vector<v1::ChatEvent> events;
    std::vector<std::string> tokens;
    bool killed = false;
    for (v1::ChatEvent e; reader->Read(&e);) {
      events.push_back(e);
      if (e.has_routed()) QCOMPARE(e.routed().node(), std::string("second"));
      if (!e.has_token()) continue;
      QCOMPARE(e.token().index(), static_cast<unsigned>(tokens.size()));
      tokens.push_back(e.token().text());
      if (tokens.size() == 3 && !killed) {
        QVERIFY(setState("local", v1::NODE_STATE_READY).ok());
        ::kill(static_cast<pid_t>(second.processId()), SIGKILL);
        killed = true;
      }
    }
    QVERIFY(reader->Finish().ok());
    second.waitForFinished(5000);
    QVERIFY(killed);

    const auto redirect = std::find_if(events.begin(), events.end(),
                                       [](const auto& e) { return e.has_redirected(); });
    QVERIFY(redirect != events.end());
    QCOMPARE(redirect->redirected().from_node(), std::string("second"));
    QCOMPARE(redirect->redirected().to_node(), std::string("local"));
    // It resumes exactly after the last token the client already had.
    const auto before =
        std::count_if(events.begin(), redirect, [](const auto& e) { return e.has_token(); });
    QVERIFY(before >= 3);
    QCOMPARE(redirect->redirected().resume_index(), static_cast<unsigned>(before));
    QVERIFY(events.back().has_done());
    QCOMPARE(tokens, expectedAnswer(request));
  }

  // SIGTERM drains: the router stops sending the worker new requests, the answer it is
  // streaming finishes there (no redirect), and the worker then exits cleanly.
  void sigtermDrainsRunningAnswersBeforeExiting() {
    QProcess third;
    QVERIFY(startWorker(third, "low", "third"));

    QVERIFY(setState("local", v1::NODE_STATE_CORDONED).ok());
    const auto request = makeRequest("rw-drain", "Take your time with this one.", 20);
    auto stub = v1::ChatService::NewStub(channel_);
    grpc::ClientContext c;
    withToken(c);
    auto reader = stub->Chat(&c, request);
    std::vector<std::string> tokens;
    bool redirected = false;
    for (v1::ChatEvent e; reader->Read(&e);) {
      redirected = redirected || e.has_redirected();
      if (e.has_routed()) QCOMPARE(e.routed().node(), std::string("third"));
      if (!e.has_token()) continue;
      tokens.push_back(e.token().text());
      if (tokens.size() == 2) {
        QVERIFY(setState("local", v1::NODE_STATE_READY).ok());
        third.terminate();  // SIGTERM
      }
    }
    QVERIFY(reader->Finish().ok());
    QVERIFY(!redirected);
    QCOMPARE(tokens, expectedAnswer(request));
    QVERIFY(third.waitForFinished(30000));
    QCOMPARE(third.exitStatus(), QProcess::NormalExit);
    QCOMPARE(third.exitCode(), 0);
  }
};

QTEST_GUILESS_MAIN(TestRouterWorker)
#include "test_router_worker.moc"
