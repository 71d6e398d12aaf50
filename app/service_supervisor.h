// ServiceSupervisor: runs the bundled tidelane-router and tidelane-worker as child
// processes on free loopback ports with a fresh random token, and keeps them running.
//
// start() launches the router (port 0; the router reports the port it bound), then the
// worker pointed at it; ready() fires once both report ready. A child that dies is started
// again after a short backoff (the router on the same port, so its worker and clients
// reconnect); a child that keeps dying is given up on with failed(). stop() (and the
// destructor) terminate both and wait for them. Children also get SIGTERM if the app dies.
//
// The token lives in a file readable only by the user, in a private runtime directory
// removed on stop; it is never put on a command line or in a log.
//
// Threading: GUI (or any one event-loop) thread only.
#pragma once

#include <QElapsedTimer>
#include <QObject>
#include <QProcess>
#include <QString>
#include <QStringList>
#include <QTemporaryDir>
#include <memory>

namespace tidelane::app {

class ServiceSupervisor : public QObject {
  Q_OBJECT

 public:
  struct Options {
    QString binDir;   // where tidelane-router and tidelane-worker are
    QString dataDir;  // router --data-dir; logs go to dataDir/logs
    QString workerProfile = QStringLiteral("mid");
    QString workerName = QStringLiteral("local");
    // A GGUF model: the worker runs the inference engine on it. Empty: the synthetic engine
    // timed by workerProfile.
    QString modelPath;
    int maxRestartsPerMinute = 5;
  };

  explicit ServiceSupervisor(Options options, QObject* parent = nullptr);
  ~ServiceSupervisor() override;

  void start();
  void stop();

  bool isReady() const { return routerReady_ && workerReady_; }
  QString grpcAddress() const { return grpcAddress_; }  // "127.0.0.1:PORT" once the router is up
  QString httpAddress() const { return httpAddress_; }
  QString token() const { return token_; }
  QString tokenFile() const;
  qint64 routerPid() const;
  qint64 workerPid() const;

 signals:
  void ready();  // both children up (at start and after each restart)
  void statusChanged(const QString& message);
  void childRestarted(const QString& which);  // "router" or "worker"
  void failed(const QString& message);        // gave up; the message says why and where the log is

 private:
  struct Child {
    QString name;
    std::unique_ptr<QProcess> process;
    QByteArray pendingStdout;
    QList<qint64> crashTimes;  // ms since start, for the restart budget
  };

  void launchRouter();
  void launchWorker();
  void launch(Child& child, const QStringList& args);
  void onReadyRead(Child& child);
  void onFinished(Child& child, int exitCode, QProcess::ExitStatus status);
  QString logPath(const Child& child) const;

  Options options_;
  std::unique_ptr<QTemporaryDir> runtimeDir_;
  QString token_;
  QString grpcAddress_;
  QString httpAddress_;
  bool routerReady_ = false;
  bool workerReady_ = false;
  bool stopping_ = false;
  QElapsedTimer clock_;
  Child router_;
  Child worker_;
};

}  // namespace tidelane::app
