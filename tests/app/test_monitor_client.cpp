// GrpcMonitorClient against a real tidelane-router and synthetic tidelane-worker started
// as child processes, over loopback gRPC: frames arrive with the worker's node in them, a
// chat sent meanwhile shows up as a flow to that node and in the counters, the client
// reconnects by itself when the router is killed and restarted, reports a router it cannot
// reach, and emits nothing once stopped. The app's View → Monitor opens a monitor window
// fed by its own bundled router.
#include <signal.h>

#include <QAction>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include "app/app_controller.h"
#include "app/grpc_chat_backend.h"
#include "app/grpc_monitor_client.h"
#include "app/service_supervisor.h"
#include "ui/main_window.h"
#include "ui/monitor/monitor_model.h"
#include "ui/monitor/monitor_window.h"

using namespace tidelane;
using ui::monitor::MonitorFrame;

class TestMonitorClient : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir data_;
  std::unique_ptr<app::ServiceSupervisor> services_;

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
  }

  void cleanupTestCase() { services_.reset(); }

  void framesCarryTheWorkersNode() {
    app::GrpcMonitorClient client;
    QSignalSpy connected(&client, &ui::monitor::MonitorSource::connectionChanged);
    QList<MonitorFrame> frames;
    connect(&client, &ui::monitor::MonitorSource::frameReceived, this,
            [&](const MonitorFrame& f) { frames.append(f); });
    client.start(services_->grpcAddress(), services_->token(), 100);
    QTRY_VERIFY_WITH_TIMEOUT(frames.size() >= 3, 20000);
    QVERIFY(connected.count() >= 1);
    QCOMPARE(connected.first().at(0).toBool(), true);

    const MonitorFrame& f = frames.last();
    QVERIFY(f.timestampMs > frames.first().timestampMs);
    QVERIFY(qAbs(f.timestampMs - QDateTime::currentMSecsSinceEpoch()) < 60'000);
    QVERIFY(!f.policy.isEmpty());
    const auto* local = f.node(QStringLiteral("local"));
    QVERIFY(local);
    QCOMPARE(local->tier, ui::monitor::Tier::High);
    QCOMPARE(local->state, ui::monitor::NodeState::Ready);
    QVERIFY(local->maxBatch > 0);
    QVERIFY(!local->model.isEmpty());
    client.stop();
    QVERIFY(!client.isRunning());
  }

  void chatSentMeanwhileShowsUpAsAFlow() {
    app::GrpcMonitorClient client;
    bool flowSeen = false, sent = false;
    qint64 servedAtStart = -1, servedNow = -1;
    double ttftP50 = 0, ttftP99 = 0;
    // Flows carry the router's own request number, not the client's id, so the test looks
    // for a flow to the node in a frame after the chat was sent (the router is otherwise
    // idle; the first frame carries the router's recent backlog and is only a baseline).
    connect(&client, &ui::monitor::MonitorSource::frameReceived, this, [&](const MonitorFrame& f) {
      if (servedAtStart < 0) servedAtStart = f.counters.served;
      servedNow = f.counters.served;
      ttftP50 = f.counters.ttftP50Ms;
      ttftP99 = f.counters.ttftP99Ms;
      if (!sent) return;
      for (const auto& flow : f.flows) {
        if (flow.toNode == QStringLiteral("local") && !flow.requestId.isEmpty() &&
            flow.stage == ui::monitor::Stage::Whole) {
          flowSeen = true;
          QVERIFY(f.node(QStringLiteral("local"))->arrivals >= 1);
        }
      }
    });
    client.start(services_->grpcAddress(), services_->token(), 100);
    QTRY_VERIFY_WITH_TIMEOUT(servedAtStart >= 0, 20000);  // watching before the chat starts

    app::GrpcChatBackend chat;
    chat.setEndpoint(services_->grpcAddress(), services_->token());
    QSignalSpy finished(&chat, &ui::ChatBackend::finished);
    sent = true;
    chat.send({{QStringLiteral("user"), QStringLiteral("Where does the tide go?")}}, 8);
    QVERIFY(finished.wait(30000));
    QTRY_VERIFY_WITH_TIMEOUT(flowSeen, 20000);
    QTRY_VERIFY_WITH_TIMEOUT(servedNow > servedAtStart, 20000);
    // The served request's time to first token is in the router's recent percentiles.
    QTRY_VERIFY_WITH_TIMEOUT(ttftP50 > 0, 20000);
    QVERIFY(ttftP99 >= ttftP50);
  }

  void switchesThePolicyLiveAndSaysWhyItCannot() {
    app::GrpcMonitorClient client;
    QString framePolicy;
    connect(&client, &ui::monitor::MonitorSource::frameReceived, this,
            [&](const MonitorFrame& f) { framePolicy = f.policy; });
    QSignalSpy reported(&client, &ui::monitor::MonitorSource::policiesReported);
    client.start(services_->grpcAddress(), services_->token(), 100);
    client.requestPolicy(QString());  // a question
    QVERIFY(reported.wait(20000));
    const QStringList available = reported.last().at(1).toStringList();
    QVERIFY(available.contains(QStringLiteral("tidal")));
    QVERIFY(available.contains(QStringLiteral("round-robin")));
    QVERIFY(reported.last().at(2).toString().isEmpty());

    client.requestPolicy(QStringLiteral("round-robin"));
    QVERIFY(reported.wait(20000));
    QCOMPARE(reported.last().at(0).toString(), QStringLiteral("round-robin"));
    QTRY_COMPARE_WITH_TIMEOUT(framePolicy, QStringLiteral("round-robin"), 20000);

    client.requestPolicy(QStringLiteral("no-such-policy"));
    QVERIFY(reported.wait(20000));
    QVERIFY(reported.last().at(2).toString().contains(QStringLiteral("no-such-policy")));

    const QString before = reported.last().at(0).toString();
    client.requestPolicy(QStringLiteral("tidal"));  // leave the router as the others expect
    QVERIFY(reported.wait(20000));
    QCOMPARE(reported.last().at(0).toString(), QStringLiteral("tidal"));
    QVERIFY(before.isEmpty());  // a failed request reports no current policy
  }

  void reconnectsWhenTheRouterComesBack() {
    app::GrpcMonitorClient client;
    QList<bool> states;
    QList<qint64> stamps;
    connect(&client, &ui::monitor::MonitorSource::connectionChanged, this,
            [&](bool up, const QString& message) {
              states.append(up);
              if (!up) QVERIFY(!message.isEmpty());
            });
    connect(&client, &ui::monitor::MonitorSource::frameReceived, this,
            [&](const MonitorFrame& f) { stamps.append(f.timestampMs); });
    client.start(services_->grpcAddress(), services_->token(), 100);
    QTRY_VERIFY_WITH_TIMEOUT(!stamps.isEmpty(), 20000);

    // SIGKILL the router; the supervisor starts it again on the same port.
    QSignalSpy restarted(services_.get(), &app::ServiceSupervisor::childRestarted);
    QSignalSpy ready(services_.get(), &app::ServiceSupervisor::ready);
    QVERIFY(::kill(static_cast<pid_t>(services_->routerPid()), SIGKILL) == 0);
    QTRY_VERIFY_WITH_TIMEOUT(states.contains(false), 20000);
    QVERIFY(ready.wait(30000) || ready.count() > 0);
    const qsizetype before = stamps.size();
    QTRY_VERIFY_WITH_TIMEOUT(states.size() >= 3 && states.last(), 30000);
    QTRY_VERIFY_WITH_TIMEOUT(stamps.size() > before + 2, 20000);
    QVERIFY(restarted.count() >= 1);
  }

  void unreachableRouterIsReportedAndRetried() {
    app::GrpcMonitorClient client;
    QSignalSpy changed(&client, &ui::monitor::MonitorSource::connectionChanged);
    // A port nothing listens on: bound by nobody (port 1 needs root to listen).
    client.start(QStringLiteral("127.0.0.1:1"), QStringLiteral("token"), 100);
    QTRY_VERIFY_WITH_TIMEOUT(changed.count() >= 2, 20000);  // reported, retried, reported
    QCOMPARE(changed.first().at(0).toBool(), false);
    QVERIFY(changed.first().at(1).toString().contains(QStringLiteral("retrying")));
  }

  void viewMonitorOpensAWindowFedByTheBundledRouter() {
    QTemporaryDir data;
    app::AppSettings settings;
    app::AppController controller(settings, QStringLiteral(TIDELANE_BIN_DIR), data.path());
    controller.start();
    QVERIFY(!controller.monitorWindow());
    auto* action = controller.window()->findChild<QAction*>(QStringLiteral("showMonitor"));
    QVERIFY(action);
    QCOMPARE(action->shortcut(), QKeySequence(Qt::CTRL | Qt::Key_M));
    action->trigger();
    QVERIFY(controller.monitorWindow());
    QVERIFY(controller.monitorWindow()->isVisible());
    const auto& history = controller.monitorWindow()->model()->history();
    QTRY_VERIFY_WITH_TIMEOUT(
        !history.isEmpty() && history.latest().node(QStringLiteral("local")) != nullptr, 30000);
  }

  void nothingArrivesAfterStop() {
    app::GrpcMonitorClient client;
    QSignalSpy frames(&client, &ui::monitor::MonitorSource::frameReceived);
    client.start(services_->grpcAddress(), services_->token(), 20);
    QVERIFY(frames.wait(20000));
    client.stop();
    const qsizetype seen = frames.size();
    // Whatever the watch thread had queued before it was joined is dropped, not delivered.
    QCoreApplication::processEvents();
    QCoreApplication::sendPostedEvents();
    QCOMPARE(frames.size(), seen);
  }
};

QTEST_MAIN(TestMonitorClient)
#include "test_monitor_client.moc"
