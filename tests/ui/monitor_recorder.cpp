// monitor_recorder: watches a running router with GrpcMonitorClient and writes the frames
// it receives as a JSON array (the format of ui/monitor's toJson), e.g. to record
// tests/ui/data/surge-frames.json from a router in a surge. Built with the tests, not run
// by CTest.
//   monitor_recorder HOST:PORT TOKEN_FILE SECONDS OUT.json [INTERVAL_MS] [KEEP_LAST]
#include <QCoreApplication>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QTimer>
#include <cstdio>

#include "app/grpc_monitor_client.h"

int main(int argc, char** argv) {
  QCoreApplication qapp(argc, argv);
  const QStringList args = qapp.arguments();
  if (args.size() < 5) {
    std::fprintf(stderr,
                 "usage: monitor_recorder HOST:PORT TOKEN_FILE SECONDS OUT.json [INTERVAL_MS] "
                 "[KEEP_LAST]\n");
    return 2;
  }
  QFile tokenFile(args[2]);
  if (!tokenFile.open(QIODevice::ReadOnly)) {
    std::fprintf(stderr, "monitor_recorder: %s\n", qPrintable(tokenFile.errorString()));
    return 1;
  }
  const QString token = QString::fromUtf8(tokenFile.readLine()).trimmed();
  const int interval = args.size() > 5 ? args[5].toInt() : 250;
  const int keepLast = args.size() > 6 ? args[6].toInt() : 0;
  QJsonArray frames;
  tidelane::app::GrpcMonitorClient client;
  QObject::connect(&client, &tidelane::ui::monitor::MonitorSource::frameReceived,
                   [&](const tidelane::ui::monitor::MonitorFrame& f) {
                     auto copy = f;
                     copy.flows.clear();  // arrivals per node are kept; ids are not needed
                     frames.append(tidelane::ui::monitor::toJson(copy));
                   });
  QObject::connect(&client, &tidelane::ui::monitor::MonitorSource::connectionChanged,
                   [](bool up, const QString& m) {
                     if (!up) std::fprintf(stderr, "monitor_recorder: %s\n", qPrintable(m));
                   });
  client.start(args[1], token, interval);
  QTimer::singleShot(args[3].toInt() * 1000, &qapp, &QCoreApplication::quit);
  QCoreApplication::exec();
  client.stop();
  if (keepLast > 0 && frames.size() > keepLast) {
    while (frames.size() > keepLast) frames.removeFirst();
  }
  QFile out(args[4]);
  if (!out.open(QIODevice::WriteOnly) ||
      out.write(QJsonDocument(frames).toJson(QJsonDocument::Compact)) < 0) {
    std::fprintf(stderr, "monitor_recorder: %s\n", qPrintable(out.errorString()));
    return 1;
  }
  std::fprintf(stderr, "monitor_recorder: %lld frames\n", static_cast<long long>(frames.size()));
  return 0;
}
