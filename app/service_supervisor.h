// ServiceSupervisor: runs the bundled tidelane-router and tidelane-worker as child
// processes with a fresh random token, and keeps them running. Their gRPC servers listen on
// Unix sockets in the private runtime directory: no other local user can even connect (loopback
// TCP lets every local user try the token), and each hop is a little faster. A child whose socket
// path would not fit a socket address, or that serves TLS, gets a free loopback port instead. The
// router's OpenAI HTTP API is always on a loopback port.
//
// start() launches the router, then the worker(s) pointed at it; ready() fires once all report
// ready. By default there is one worker (the chat app's); Options::workers asks for a set of them
// instead (the surge demo's synthetic clusters), and Options::routerArgs passes more router flags
// (`--policy NAME`). A child that dies is started again after a short backoff (the router on the
// same address, so its worker and clients reconnect); a child that keeps dying is given up on with
// failed(). stop() (and the destructor) terminate all and wait for them, SIGKILL after
// Options::stopGraceMs, so no child outlives the supervisor. Children also get SIGTERM if the app
// dies.
//
// The token lives in a file readable only by the user, in a private runtime directory (mode
// 0700, so no one else reaches the sockets in it either, even before a daemon makes its socket
// 0600) removed on stop; it is never put on a command line or in a log. The chat worker's signing
// key, when the app holds it (setWorkerIdentity), goes to the worker over its stdin.
//
// Threading: GUI (or any one event-loop) thread only.
#pragma once

#include <QElapsedTimer>
#include <QObject>
#include <QProcess>
#include <QString>
#include <QStringList>
#include <QTemporaryDir>
#include <csignal>
#include <memory>
#include <vector>

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
    // More tidelane-router arguments, e.g. {"--policy", "round-robin"}.
    QStringList routerArgs;
    // Synthetic workers to run instead of the one above; its log is logs/<name>.log.
    struct WorkerSpec {
      QString name;
      QString profile;
      QStringList extraArgs;  // e.g. {"--drain-timeout", "1"}
    };
    QList<WorkerSpec> workers;
    // Where the private runtime directory (the token file, the sockets) is created; empty: the
    // system's temporary directory. The demo puts it under its own directory so that every
    // child's command line names that directory (its tests find strays by it). Under a deep one
    // a socket's path may not fit (107 bytes); that child listens on loopback TCP instead.
    QString runtimeParent;
    // What the children get when the app dies without stopping them: SIGTERM lets the router
    // close its ledger; the demo's throwaway clusters use SIGKILL so none outlives the app
    // while it finishes a long request.
    int parentDeathSignal = SIGTERM;
    // How long stop() lets the children exit after SIGTERM before it sends SIGKILL.
    int stopGraceMs = 5000;
    // The chat app's worker (no Options::workers) waits for setWorkerIdentity() before it
    // starts; the router does not, so a slow keychain overlaps with the router's start.
    bool awaitWorkerIdentity = false;
  };

  explicit ServiceSupervisor(Options options, QObject* parent = nullptr);
  ~ServiceSupervisor() override;

  void start();
  // Terminates every child and waits for them (SIGKILL after Options::stopGraceMs): when it
  // returns, none is left. The destructor does this.
  void stop();
  // The same without waiting: every child gets SIGTERM now and SIGKILL after
  // Options::stopGraceMs, and stopped() says when the last one has exited (childPids() lists
  // them until then). For the GUI thread, which must not block; destroying the supervisor
  // before stopped() waits for what is left, as stop() does.
  void stopAsync();
  // The bundled worker runs `path` (a GGUF model; empty: the synthetic engine) from now on:
  // a running worker is replaced (its exit is not counted as a crash), a stopped one picks it
  // up when it starts. Returns at once: the old worker gets SIGTERM, SIGKILL after
  // Options::stopGraceMs, and the new one starts when the old one has exited (both would
  // register under the same name). No effect on the demo's workers (Options::workers).
  void setModelPath(const QString& path);
  // How the chat app's worker gets its signing key, at this start and every restart: `identity`
  // (router/receipt's identity text) over its stdin (--identity-stdin), so it never touches the
  // disk; else the key file `file` (--identity-file); both empty: the worker's own default.
  // A worker held back by Options::awaitWorkerIdentity starts now (once the router is up).
  void setWorkerIdentity(const QByteArray& identity, const QString& file);
  QString modelPath() const { return options_.modelPath; }
  // The bundled worker's node name, as the router lists it (Options::workerName).
  QString workerName() const { return options_.workerName; }

  bool isReady() const;
  // Where the router serves gRPC once it is up: "unix:/ABSOLUTE/PATH" (in the runtime directory),
  // or "127.0.0.1:PORT" where a socket is not possible; what grpc::CreateChannel takes. It stays
  // the same across the router's restarts.
  QString grpcAddress() const { return grpcAddress_; }
  QString httpAddress() const { return httpAddress_; }
  QString token() const { return token_; }
  QString tokenFile() const;
  qint64 routerPid() const;
  qint64 workerPid() const;  // the first worker's
  // Every child process running now (router first, then those still exiting after
  // setModelPath or stopAsync), for stop-time checks.
  QList<qint64> childPids() const;

 signals:
  void ready();  // both children up (at start and after each restart)
  void statusChanged(const QString& message);
  void childRestarted(const QString& which);  // "router" or "worker"
  void failed(const QString& message);        // gave up; the message says why and where the log is
  void stopped();                             // after stopAsync(): every child has exited

 private:
  struct Child {
    QString program;           // "router" or "worker": runs tidelane-<program>
    QString name;              // its log is logs/<name>.log
    QString socketName;        // its gRPC socket's file name in the runtime directory
    Options::WorkerSpec spec;  // workers only
    bool ready = false;
    std::unique_ptr<QProcess> process;
    QByteArray pendingStdout;
    QList<qint64> crashTimes;  // ms since start, for the restart budget
  };

  // Ends a worker process being replaced without waiting for it (setModelPath); the chat
  // worker starts again once every retiring process has exited.
  void retire(std::unique_ptr<QProcess> process);
  void launchRouter();
  void launchWorker(Child& worker);
  void launch(Child& child, const QStringList& args);
  void onReadyRead(Child& child);
  void onFinished(Child& child, int exitCode, QProcess::ExitStatus status);
  QString logPath(const Child& child) const;
  // "unix:PATH" of `child`'s socket in the runtime directory; empty where the path is too long.
  QString socketAddress(const Child& child) const;
  QString routerListenAddress() const;
  QString workerListenAddress(const Child& worker) const;

  Options options_;
  bool identityKnown_ = false;  // setWorkerIdentity() was called (see awaitWorkerIdentity)
  QByteArray workerIdentity_;   // wiped when replaced and on destruction
  QString workerIdentityFile_;
  std::unique_ptr<QTemporaryDir> runtimeDir_;
  QString token_;
  QString grpcAddress_;
  QString routerListen_;  // the router's --grpc-listen at its latest launch
  QString httpAddress_;
  bool stopping_ = false;
  QElapsedTimer clock_;
  Child router_;
  std::vector<std::unique_ptr<Child>> workers_;      // stable addresses: callbacks hold Child&
  std::vector<std::unique_ptr<QProcess>> retiring_;  // replaced workers still exiting
};

}  // namespace tidelane::app
