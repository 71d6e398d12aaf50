// The node panel (issue 8) on a real X server: this machine's hardware through the worker's
// own HardwareProbe (on a machine without NVIDIA GPUs, and with NVML named missing on any
// machine, it says there is no GPU and why, and still shows CPU and memory as /proc has
// them); GPU cards from fed samples; the worker section from snapshots converted by the
// app's monitor client; and Cordon / Drain / Resume against a real tidelane-router and
// synthetic tidelane-worker started as child processes, with a wrong token refused clearly.
#include <QAction>
#include <QComboBox>
#include <QFile>
#include <QLabel>
#include <QLibrary>
#include <QPushButton>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include "app/app_controller.h"
#include "app/grpc_monitor_client.h"
#include "app/hardware_sampler.h"
#include "app/service_supervisor.h"
#include "tidelane/v1/monitor.pb.h"
#include "ui/main_window.h"
#include "ui/monitor/monitor_window.h"
#include "ui/node/node_panel.h"
#include "ui/node/node_panel_model.h"
#include "ui/node/sparkline.h"

using namespace tidelane;
using ui::node::NodePanel;
using ui::node::NodePanelModel;
using WorkerState = NodePanelModel::WorkerState;

namespace {

QString text(const QWidget& root, const char* name) {
  auto* label = root.findChild<QLabel*>(QString::fromLatin1(name));
  return label ? label->text() : QStringLiteral("<no label %1>").arg(QLatin1String(name));
}

QPushButton* button(const QWidget& root, const char* name) {
  return root.findChild<QPushButton*>(QString::fromLatin1(name));
}

// MemTotal from /proc/meminfo in bytes, read independently of the probe.
qint64 memTotalBytes() {
  QFile f(QStringLiteral("/proc/meminfo"));
  if (!f.open(QIODevice::ReadOnly)) return -1;
  for (const QByteArray& line : f.readAll().split('\n')) {
    if (line.startsWith("MemTotal:")) {
      return line.mid(9).trimmed().split(' ').first().toLongLong() * 1024;
    }
  }
  return -1;
}

// The buttons that are enabled, as "drain cordon resume" minus the disabled ones.
QString enabledButtons(const QWidget& panel) {
  QStringList on;
  if (button(panel, "drainButton")->isEnabled()) on << QStringLiteral("drain");
  if (button(panel, "cordonButton")->isEnabled()) on << QStringLiteral("cordon");
  if (button(panel, "resumeButton")->isEnabled()) on << QStringLiteral("resume");
  return on.join(QLatin1Char(' '));
}

v1::ClusterSnapshot snapshot(v1::NodeState localState, bool withLocal = true) {
  v1::ClusterSnapshot s;
  s.set_timestamp_ms(1'700'000'000'000);
  s.set_policy("tidal");
  if (withLocal) {
    auto* n = s.add_nodes();
    n->set_name("local");
    n->set_tier(v1::TIER_MID);
    n->set_lane(v1::LANE_DECODE);
    n->set_state(localState);
    n->set_active_requests(3);
    n->set_max_batch(8);
    n->set_served_total(4217);
    n->set_tokens_per_s(87.5);
    n->set_model("aidreams260K");
  }
  auto* o = s.add_nodes();
  o->set_name("gpu-box-2");
  o->set_tier(v1::TIER_HIGH);
  o->set_lane(v1::LANE_PREFILL);
  o->set_state(v1::NODE_STATE_READY);
  o->set_served_total(12);
  o->set_model("qwen2.5-7b");
  return s;
}

}  // namespace

class TestNodePanel : public QObject {
  Q_OBJECT

 private slots:
  // NVML named missing: the no-GPU path on any machine, with the probe's reason.
  void withoutNvmlSaysNoGpuAndShowsCpuAndMemory() {
    app::HardwareSampler sampler(QStringLiteral("libnvidia-ml-absent-for-test.so.1"));
    NodePanel panel(nullptr, &sampler);
    panel.resize(900, 700);
    panel.show();
    QVERIFY(QTest::qWaitForWindowExposed(&panel));
    sampler.start(150);
    // Two samples: the first has no CPU figure yet (utilisation is measured between two).
    QTRY_VERIFY_WITH_TIMEOUT(panel.model()->cpuSeries().size() >= 2, 10000);

    auto* status = panel.findChild<QLabel*>(QStringLiteral("gpuStatus"));
    QVERIFY(status && status->isVisible());
    QCOMPARE(status->text(),
             QStringLiteral("No NVIDIA GPU found (NVML not available: no NVIDIA driver: "
                            "libnvidia-ml-absent-for-test.so.1 not found)"));
    QVERIFY(!panel.findChild<QWidget*>(QStringLiteral("gpuCard0")));

    const auto& s = panel.model()->latest();
    QCOMPARE(s.memoryTotalBytes, memTotalBytes());
    QVERIFY(s.memoryUsedBytes > 0 && s.memoryUsedBytes < s.memoryTotalBytes);
    QVERIFY(s.cpuUtilisation >= 0 && s.cpuUtilisation <= 1);

    const QRegularExpression pct(QStringLiteral("^(\\d+)%$"));
    const auto cpu = pct.match(text(panel, "cpuValue"));
    QVERIFY2(cpu.hasMatch(), qPrintable(text(panel, "cpuValue")));
    QVERIFY(cpu.captured(1).toInt() <= 100);
    const QString memory = text(panel, "memoryValue");
    QVERIFY2(QRegularExpression(QStringLiteral("^[\\d.,]+ [GM]iB / [\\d.,]+ [GM]iB$"))
                 .match(memory)
                 .hasMatch(),
             qPrintable(memory));
    QVERIFY(memory.endsWith(NodePanelModel::bytesText(memTotalBytes())));
    auto* spark = panel.findChild<ui::node::Sparkline*>(QStringLiteral("cpuValueSpark"));
    QVERIFY(spark && spark->values().size() >= 2);
    QVERIFY(!spark->accessibleName().isEmpty());
  }

  // The default library name, on this machine: if there is no NVIDIA driver, the panel says
  // so with the real reason; where there is one, one card per GPU.
  void onThisMachine() {
    app::HardwareSampler sampler;
    NodePanel panel(nullptr, &sampler);
    panel.show();
    QVERIFY(QTest::qWaitForWindowExposed(&panel));
    sampler.start();
    QTRY_VERIFY_WITH_TIMEOUT(panel.model()->hasSample(), 10000);
    QVERIFY(panel.model()->latest().memoryTotalBytes > 0);
    if (!QLibrary(QStringLiteral("nvidia-ml"), 1).load()) {
      QCOMPARE(text(panel, "gpuStatus"),
               QStringLiteral("No NVIDIA GPU found (NVML not available: no NVIDIA driver: "
                              "libnvidia-ml.so.1 not found)"));
      QCOMPARE(panel.model()->gpuCount(), 0);
    } else if (panel.model()->gpuCount() > 0) {
      QVERIFY(panel.findChild<QWidget*>(QStringLiteral("gpuCard0")));
      QVERIFY(text(panel, "gpuStatus").isEmpty());
    }
  }

  // The sampler's GPU path through the probe, against a stand-in NVML with two GPUs
  // (tests/router/fake_nvml.cc): one card each, clocks included. (moc does not see the
  // definition, so the slot is always there and skips without it.)
  void gpuCardsFromTheProbe() {
#ifndef TIDELANE_FAKE_NVML
    QSKIP("built without the stand-in NVML");
#else
    app::HardwareSampler sampler(QStringLiteral(TIDELANE_FAKE_NVML));
    NodePanel panel(nullptr, &sampler);
    panel.show();
    QVERIFY(QTest::qWaitForWindowExposed(&panel));
    sampler.start(150);
    QTRY_VERIFY_WITH_TIMEOUT(panel.model()->cpuSeries().size() >= 2, 10000);
    QCOMPARE(panel.model()->gpuCount(), 2);
    QVERIFY(panel.findChild<QWidget*>(QStringLiteral("gpuCard1")));
    QVERIFY(!panel.findChild<QLabel*>(QStringLiteral("gpuStatus"))->isVisible());
    QCOMPARE(text(panel, "gpu0Util"), QStringLiteral("40%"));
    QCOMPARE(text(panel, "gpu1Util"), QStringLiteral("50%"));
    QCOMPARE(text(panel, "gpu1Memory"), QStringLiteral("6.0 GiB / 24.0 GiB"));
    QCOMPARE(text(panel, "gpu1Temperature"), QStringLiteral("65 °C"));
    QCOMPARE(text(panel, "gpu1Power"), QStringLiteral("216 W"));
    QCOMPARE(text(panel, "gpu1SmClock"), QStringLiteral("1755 MHz"));
    QCOMPARE(text(panel, "gpu1MemoryClock"), QStringLiteral("9501 MHz"));
    QVERIFY(panel.model()->gpuSeries(1, NodePanelModel::GpuMetric::SmClock).size() >= 2);
    // For a person to look at: TIDELANE_NODE_PANEL_SCREENSHOT=FILE.png saves the panel.
    if (const QString shot = qEnvironmentVariable("TIDELANE_NODE_PANEL_SCREENSHOT");
        !shot.isEmpty()) {
      panel.model()->setLocalNode(QStringLiteral("local"));
      panel.model()->addFrame(app::GrpcMonitorClient::toFrame(snapshot(v1::NODE_STATE_READY)));
      panel.resize(900, 1000);
      QTRY_VERIFY_WITH_TIMEOUT(panel.model()->cpuSeries().size() >= 8, 10000);
      QVERIFY(panel.grab().save(shot));
    }
#endif
  }

  // GPU cards from fed samples: every figure with its unit, series over the samples kept.
  void gpuCardsShowEveryFigure() {
    NodePanel panel(nullptr, nullptr);
    panel.show();
    QVERIFY(QTest::qWaitForWindowExposed(&panel));
    for (int i = 0; i < 3; ++i) {
      ui::node::HostSample s;
      s.timestampMs = 1'700'000'000'000 + i * 1000;
      s.cpuUtilisation = 0.25;
      s.memoryUsedBytes = 8ll << 30;
      s.memoryTotalBytes = 32ll << 30;
      s.nvmlLoaded = true;
      s.gpuStatus = QStringLiteral("NVML: 2 GPUs");
      for (int g = 0; g < 2; ++g) {
        s.gpus.append(ui::node::GpuSample{QStringLiteral("NVIDIA H100 80GB HBM3"), 0.5 + 0.1 * i,
                                          40ll << 30, 80ll << 30, 61.0 + i, 310.0, 1980, 2619});
      }
      panel.model()->addHostSample(s);
    }
    QVERIFY(panel.findChild<QWidget*>(QStringLiteral("gpuCard0")));
    QVERIFY(panel.findChild<QWidget*>(QStringLiteral("gpuCard1")));
    QVERIFY(!panel.findChild<QLabel*>(QStringLiteral("gpuStatus"))->isVisible());
    QCOMPARE(text(panel, "gpu1Util"), QStringLiteral("70%"));
    QCOMPARE(text(panel, "gpu1Memory"), QStringLiteral("40.0 GiB / 80.0 GiB"));
    QCOMPARE(text(panel, "gpu1Temperature"), QStringLiteral("63 °C"));
    QCOMPARE(text(panel, "gpu1Power"), QStringLiteral("310 W"));
    QCOMPARE(text(panel, "gpu1SmClock"), QStringLiteral("1980 MHz"));
    QCOMPARE(text(panel, "gpu1MemoryClock"), QStringLiteral("2619 MHz"));
    QCOMPARE(text(panel, "cpuValue"), QStringLiteral("25%"));
    const auto temps = panel.model()->gpuSeries(0, NodePanelModel::GpuMetric::Temperature);
    QCOMPARE(temps, (QList<double>{61, 62, 63}));
    // Older than two minutes drops out of the series.
    ui::node::HostSample late = panel.model()->latest();
    late.timestampMs += NodePanelModel::kHistoryMs - 500;
    panel.model()->addHostSample(late);
    QCOMPARE(panel.model()->cpuSeries().size(), 2);
  }

  // Snapshots (through the app's own conversion) drive the worker section and the buttons.
  void workerSectionFollowsSnapshots() {
    NodePanel panel(nullptr, nullptr);
    panel.show();
    QVERIFY(QTest::qWaitForWindowExposed(&panel));
    auto* model = panel.model();
    model->setLocalNode(QStringLiteral("local"));
    QCOMPARE(enabledButtons(panel), QString());  // nothing known yet

    model->addFrame(app::GrpcMonitorClient::toFrame(snapshot(v1::NODE_STATE_READY)));
    QCOMPARE(text(panel, "workerState"), QStringLiteral("ready"));
    QCOMPARE(text(panel, "workerModel"), QStringLiteral("aidreams260K"));
    QCOMPARE(text(panel, "workerLane"), QStringLiteral("decode"));
    QCOMPARE(text(panel, "workerActive"), QStringLiteral("3"));
    QCOMPARE(text(panel, "workerServed"), QLocale().toString(4217));
    QCOMPARE(text(panel, "workerTokens"), QLocale().toString(87.5, 'f', 1));
    QCOMPARE(enabledButtons(panel), QStringLiteral("drain cordon"));
    auto* combo = panel.findChild<QComboBox*>(QStringLiteral("workerNode"));
    QCOMPARE(combo->currentText(), QStringLiteral("local"));
    QCOMPARE(combo->count(), 2);

    model->addFrame(app::GrpcMonitorClient::toFrame(snapshot(v1::NODE_STATE_DRAINING)));
    QCOMPARE(text(panel, "workerState"), QStringLiteral("draining"));
    QCOMPARE(enabledButtons(panel), QStringLiteral("cordon resume"));
    model->addFrame(app::GrpcMonitorClient::toFrame(snapshot(v1::NODE_STATE_CORDONED)));
    QCOMPARE(text(panel, "workerState"), QStringLiteral("cordoned"));
    QCOMPARE(enabledButtons(panel), QStringLiteral("resume"));
    model->addFrame(app::GrpcMonitorClient::toFrame(snapshot(v1::NODE_STATE_DOWN)));
    QCOMPARE(text(panel, "workerState"), QStringLiteral("gone"));
    QCOMPARE(enabledButtons(panel), QString());
    // The worker left the router: still listed (so it is clear which one is gone), no figures.
    model->addFrame(app::GrpcMonitorClient::toFrame(snapshot(v1::NODE_STATE_READY, false)));
    QCOMPARE(text(panel, "workerState"), QStringLiteral("gone"));
    QCOMPARE(text(panel, "workerServed"), QStringLiteral("—"));
    QCOMPARE(combo->currentText(), QStringLiteral("local"));
    QCOMPARE(enabledButtons(panel), QString());

    // Another node picked in the combo (as with a remote router).
    combo->setCurrentIndex(combo->findText(QStringLiteral("gpu-box-2")));
    emit combo->textActivated(QStringLiteral("gpu-box-2"));
    QCOMPARE(text(panel, "workerModel"), QStringLiteral("qwen2.5-7b"));
    QCOMPARE(text(panel, "workerLane"), QStringLiteral("prefill"));
    QCOMPARE(text(panel, "workerServed"), QStringLiteral("12"));
    QCOMPARE(enabledButtons(panel), QStringLiteral("drain cordon"));

    // With no router to ask, a click says so instead of doing nothing.
    QTest::mouseClick(button(panel, "cordonButton"), Qt::LeftButton);
    QCOMPARE(text(panel, "nodeMessage"), QStringLiteral("Not connected to a router."));

    // A remote router (no bundled worker): the first node is shown until the user picks.
    model->setLocalNode(QStringLiteral("local"));
    QCOMPARE(model->selectedNode(), QStringLiteral("local"));
    model->setLocalNode(QString());
    QCOMPARE(combo->currentText(), QStringLiteral("gpu-box-2"));
    QCOMPARE(text(panel, "workerState"), QStringLiteral("ready"));
  }

  // Against a real router and synthetic worker: Cordon, Drain and Resume change what the
  // router reports in its next snapshots; a wrong token is refused with a clear message.
  void cordonAndResumeThroughTheRouter() {
    QTemporaryDir data;
    QVERIFY(data.isValid());
    app::ServiceSupervisor::Options o;
    o.binDir = QStringLiteral(TIDELANE_BIN_DIR);
    o.dataDir = data.path();
    o.workerName = QStringLiteral("local");
    app::ServiceSupervisor services(o);
    QSignalSpy ready(&services, &app::ServiceSupervisor::ready);
    services.start();
    QVERIFY(ready.wait(30000));

    app::GrpcMonitorClient client;
    client.start(services.grpcAddress(), services.token(), 100);
    NodePanel panel(&client, nullptr);
    panel.show();
    QVERIFY(QTest::qWaitForWindowExposed(&panel));
    auto* model = panel.model();
    model->setLocalNode(services.workerName());
    QTRY_COMPARE_WITH_TIMEOUT(text(panel, "workerState"), QStringLiteral("ready"), 20000);
    QCOMPARE(enabledButtons(panel), QStringLiteral("drain cordon"));

    QTest::mouseClick(button(panel, "cordonButton"), Qt::LeftButton);
    QCOMPARE(enabledButtons(panel), QString());  // while the router is asked
    QTRY_COMPARE_WITH_TIMEOUT(model->workerState(), WorkerState::Cordoned, 20000);
    QCOMPARE(text(panel, "workerState"), QStringLiteral("cordoned"));
    QTRY_VERIFY_WITH_TIMEOUT(text(panel, "nodeMessage").contains(QStringLiteral("cordoned")),
                             20000);
    QVERIFY(!model->messageIsError());
    QCOMPARE(enabledButtons(panel), QStringLiteral("resume"));

    QTest::mouseClick(button(panel, "resumeButton"), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(model->workerState(), WorkerState::Ready, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(enabledButtons(panel), QStringLiteral("drain cordon"), 20000);

    QTest::mouseClick(button(panel, "drainButton"), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(model->workerState(), WorkerState::Draining, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(enabledButtons(panel), QStringLiteral("cordon resume"), 20000);
    QTest::mouseClick(button(panel, "resumeButton"), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(model->workerState(), WorkerState::Ready, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(text(panel, "workerState"), QStringLiteral("ready"), 20000);

    // A wrong token: the watch says so, and an operation is refused with a clear message.
    app::GrpcMonitorClient wrong;
    wrong.start(services.grpcAddress(), QStringLiteral("not-the-token"), 100);
    NodePanel refused(&wrong, nullptr);
    refused.show();
    refused.model()->setLocalNode(services.workerName());
    QTRY_VERIFY_WITH_TIMEOUT(
        text(refused, "nodeConnection").contains(QStringLiteral("token not accepted")), 20000);
    QCOMPARE(enabledButtons(refused), QString());  // no state known: nothing applies
    refused.model()->requestState(ui::monitor::NodeState::Cordoned);
    QTRY_VERIFY_WITH_TIMEOUT(!refused.model()->requestPending(), 20000);
    QVERIFY(refused.model()->messageIsError());
    QCOMPARE(text(refused, "nodeMessage"),
             QStringLiteral("Could not cordon local: the router refused the token (bearer "
                            "token not accepted)"));
    // …and the node was left as it was.
    const qint64 servedBefore = model->node() ? model->node()->servedTotal : -1;
    QVERIFY(servedBefore >= 0);
    QSignalSpy frames(&client, &ui::monitor::MonitorSource::frameReceived);
    QVERIFY(frames.wait(20000));
    QVERIFY(frames.wait(20000));
    QCOMPARE(model->workerState(), WorkerState::Ready);
    wrong.stop();
    client.stop();
  }

  // The app: View → Node panel (Ctrl+Shift+N) opens the monitor on its Node tab, which
  // follows the bundled worker and samples this machine.
  void viewNodePanelOpensTheNodeTabOnTheBundledWorker() {
    QTemporaryDir data;
    app::AppSettings settings;
    app::AppController controller(settings, QStringLiteral(TIDELANE_BIN_DIR), data.path());
    controller.start();
    auto* action = controller.window()->findChild<QAction*>(QStringLiteral("showNodePanel"));
    QVERIFY(action);
    QCOMPARE(action->shortcut(), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_N));
    action->trigger();
    QVERIFY(controller.monitorWindow() && controller.monitorWindow()->isVisible());
    auto* panel = controller.nodePanel();
    QVERIFY(panel);
    QCOMPARE(controller.monitorWindow()->nodePanel(), panel);
    QTRY_VERIFY_WITH_TIMEOUT(panel->isVisible(), 10000);  // the Node tab is in front
    QTRY_COMPARE_WITH_TIMEOUT(panel->model()->localNode(), QStringLiteral("local"), 30000);
    QTRY_COMPARE_WITH_TIMEOUT(text(*panel, "workerState"), QStringLiteral("ready"), 30000);
    QTRY_VERIFY_WITH_TIMEOUT(panel->model()->hasSample(), 10000);
    QVERIFY(!text(*panel, "memoryValue").isEmpty());
  }
};

QTEST_MAIN(TestNodePanel)
#include "test_node_panel.moc"
