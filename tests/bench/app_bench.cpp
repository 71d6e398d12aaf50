// The chat app's performance targets (issue 7), measured on the real widgets under a real X
// server (Xvfb): docs/benchmarks/app.md. Built with the tests, not run by CTest; run by
// scripts/bench-app, which also measures the cold start of the real `tidelane` binary.
//
//   app_bench open [--messages 10000] [--runs 5] [--steps 200] [--screenshot PNG]
//     A real SQLite history (app::ChatStore) holding one conversation of N messages of mixed
//     length and Markdown; the app's MainWindow over it. Times a click on the conversation in
//     the sidebar until its first paint is done and until the event loop is idle again, then
//     scrolls up one page at a time and times each step the same way.
//   app_bench stream [--rate 200] [--tokens 3000] [--into-long N] [--screenshot[-mid] PNG]
//                    [--profile]
//     A long Markdown answer streamed at RATE tokens/s by a local OpenAI-compatible SSE server
//     (its own thread) through the app's OpenAiChatBackend into the visible MainWindow (with
//     the history recording every token, as in the app), while a 1 ms precise timer on the GUI
//     thread records the gaps between its ticks: a gap is how long the event loop could not
//     run anything. With --into-long N the answer goes into a conversation of N messages.
//     Each long gap also shows the GUI thread's CPU time in it (little CPU: it waited for a
//     core) and the time the history's writes took in it; the writes' distribution and the WAL
//     checkpointer's counts are printed too, and the GUI thread's CPU time per 50 ms early and
//     late in the stream and after its last token. --profile splits the GUI thread's CPU time by
//     the events the loop delivered.
#include <QAbstractEventDispatcher>
#include <QApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QListView>
#include <QPlainTextEdit>
#include <QScrollBar>
#include <QSysInfo>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QTest>
#include <QThread>
#include <QTimer>
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <random>
#include <vector>

#include "app/chat_store.h"
#include "app/openai_chat_backend.h"
#include "ui/chat_view.h"
#include "ui/conversation_list_model.h"
#include "ui/conversation_sidebar.h"
#include "ui/main_window.h"
#include "ui/message_delegate.h"

using namespace tidelane;

namespace {

// With `stream --profile`: the GUI thread's CPU time by what the event loop delivered (the
// receiver's class and the event's type; a QTimer by its interval), outermost events only, so
// the GUI thread's own work while streaming can be split without a profiler (Qt's libraries
// come without symbols here).
class ProfilingApp : public QApplication {
 public:
  using QApplication::QApplication;
  bool notify(QObject* receiver, QEvent* event) override {
    if (!profiling || depth_ > 0 || QThread::currentThread() != thread()) {
      ++depth_;
      const bool r = QApplication::notify(receiver, event);
      --depth_;
      return r;
    }
    // Named before it is delivered: a DeferredDelete deletes the receiver.
    QString key = QString::fromLatin1(receiver->metaObject()->className());
    if (const auto* timer = qobject_cast<QTimer*>(receiver)) {
      key += QStringLiteral("(%1 ms)").arg(timer->interval());
    }
    key += QStringLiteral(" %1").arg(static_cast<int>(event->type()));
    const qint64 start = cpuNs();
    ++depth_;
    const bool r = QApplication::notify(receiver, event);
    --depth_;
    auto& [ns, n] = (finished ? byEventAtEnd : byEvent)[key];
    ns += cpuNs() - start;
    ++n;
    return r;
  }
  static qint64 cpuNs() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<qint64>(t.tv_sec) * 1000000000 + t.tv_nsec;
  }
  bool profiling = false;
  // Once the answer has finished (the backend's `finished`), events are counted apart: the end.
  bool finished = false;
  std::map<QString, std::pair<qint64, int>> byEvent, byEventAtEnd;

 private:
  int depth_ = 0;
};

// ---- workload ----------------------------------------------------------------------------

const char* const kWords[] = {
    "the",     "router", "sends",    "each",   "request", "to",      "a",      "worker",
    "whose",   "queue",  "is",       "short",  "and",     "tokens",  "stream", "back",
    "while",   "cache",  "blocks",   "stay",   "warm",    "under",   "load",   "latency",
    "budget",  "batch",  "prefill",  "decode", "model",   "context", "window", "memory",
    "we",      "can",    "measure",  "this",   "with",    "simple",  "timers", "but",
    "careful", "about",  "variance", "when",   "several", "jobs",    "share",  "cores"};

QString words(std::mt19937& rng, int n) {
  QString s;
  std::uniform_int_distribution<std::size_t> pick(0, std::size(kWords) - 1);
  for (int i = 0; i < n; ++i) {
    if (i) s += QLatin1Char(' ');
    s += QLatin1String(kWords[pick(rng)]);
  }
  if (!s.isEmpty()) s[0] = s[0].toUpper();
  return s + QLatin1Char('.');
}

QString codeBlock(std::mt19937& rng, int lines) {
  QString s = QStringLiteral("```cpp\n");
  for (int i = 0; i < lines; ++i) {
    s += QStringLiteral("auto v%1 = compute(%2, \"%3\");  // %4\n")
             .arg(i)
             .arg(rng() % 1000)
             .arg(words(rng, 2))
             .arg(words(rng, 3));
  }
  return s + QStringLiteral("```\n");
}

// An assistant answer: one to four parts among paragraphs, lists, code and a table, from a
// one-liner to ~3,000 characters, as chat answers go.
QString answer(std::mt19937& rng) {
  QString s;
  const int parts = 1 + static_cast<int>(rng() % 4);
  for (int p = 0; p < parts; ++p) {
    switch (rng() % 5) {
      case 0:
      case 1:
        s += words(rng, 8 + static_cast<int>(rng() % 60)) + QStringLiteral("\n\n");
        break;
      case 2:
        for (int i = 0, n = 2 + static_cast<int>(rng() % 5); i < n; ++i) {
          s += QStringLiteral("- **%1** %2\n").arg(words(rng, 1), words(rng, 6 + rng() % 10));
        }
        s += QLatin1Char('\n');
        break;
      case 3:
        s += codeBlock(rng, 3 + static_cast<int>(rng() % 18)) + QLatin1Char('\n');
        break;
      default:
        s += QStringLiteral("| node | TTFT | tok/s |\n| --- | --- | --- |\n");
        for (int i = 0; i < 3; ++i) {
          s += QStringLiteral("| n-%1 | %2 ms | %3 |\n").arg(i).arg(rng() % 900).arg(rng() % 90);
        }
        s += QLatin1Char('\n');
    }
  }
  return s.trimmed();
}

QString traceJson(std::mt19937& rng) {
  QJsonObject o;
  o[QStringLiteral("line")] = QStringLiteral("local (mixed) · TTFT %1 ms · %2 tok/s")
                                  .arg(40 + rng() % 400)
                                  .arg(20 + rng() % 80);
  o[QStringLiteral("node")] = QStringLiteral("local");
  o[QStringLiteral("lane")] = QStringLiteral("mixed");
  o[QStringLiteral("timeline")] =
      QJsonArray{QStringLiteral("+0 ms  accepted"), QStringLiteral("+3 ms  routed to local")};
  o[QStringLiteral("started")] = QStringLiteral("2025-01-01T10:00:00.000Z");
  return QString::fromUtf8(QJsonDocument(o).toJson(QJsonDocument::Compact));
}

// One conversation of `n` messages, alternating user and assistant, each following the one
// before (as the app writes them). Returns its id.
qint64 makeLongConversation(app::ChatStore& store, int n, qint64* chars) {
  std::mt19937 rng(7);
  ui::ConversationInfo info;
  info.title = QStringLiteral("A long conversation (%1 messages)").arg(n);
  info.created = QDateTime::currentDateTimeUtc().addDays(-30);
  info.updated = QDateTime::currentDateTimeUtc();
  info.settingsJson = QStringLiteral("{}");
  QList<ui::StoredMessage> messages;
  messages.reserve(n);
  *chars = 0;
  for (int i = 0; i < n; ++i) {
    ui::StoredMessage m;
    m.id = i + 1;
    m.parentId = i;
    m.role = i % 2 == 0 ? QStringLiteral("user") : QStringLiteral("assistant");
    m.content = i % 2 == 0 ? words(rng, 4 + static_cast<int>(rng() % 30)) : answer(rng);
    m.traceJson = i % 2 == 0 ? QStringLiteral("{}") : traceJson(rng);
    m.created = info.created.addSecs(i * 60);
    *chars += m.content.size();
    messages.append(m);
  }
  return store.importConversation(info, messages);
}

// ---- measuring ---------------------------------------------------------------------------

struct Stats {
  double min = 0, p50 = 0, p99 = 0, max = 0, mean = 0;
  int n = 0;
};

Stats stats(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const auto at = [&](double q) {
    return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
  };
  s.n = static_cast<int>(v.size());
  s.min = v.front();
  s.p50 = at(0.5);
  s.p99 = at(0.99);
  s.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  return s;
}

void printStats(const char* what, const Stats& s) {
  std::printf("%-34s n=%-5d min %7.2f  p50 %7.2f  p99 %7.2f  max %7.2f  mean %7.2f ms\n", what, s.n,
              s.min, s.p50, s.p99, s.max, s.mean);
}

// Watches a widget's paints after arm(): when the first began, and when the event loop came
// back after the last of them, a paint followed by 50 ms without another counting as the last
// (a row found taller than estimated is laid out and painted again right after).
// Note: the dispatcher's aboutToBlock fires at every turn of a waiting loop, whether or not
// work is queued, so "came back" means the turn that painted is over (the frame flushed).
class PaintWatch : public QObject {
 public:
  static constexpr int kSettleMs = 50;
  explicit PaintWatch(QWidget* w) : w_(w) {
    w->installEventFilter(this);
    connect(&timeout_, &QTimer::timeout, &loop_, &QEventLoop::quit);
    settle_.setSingleShot(true);
    connect(&settle_, &QTimer::timeout, this, [this] {
      armed_ = false;
      loop_.quit();
    });
    connect(QAbstractEventDispatcher::instance(), &QAbstractEventDispatcher::aboutToBlock, this,
            [this] {
              if (armed_ && paintedSinceTurn_) {
                paintedSinceTurn_ = false;
                idleNs_ = clock_.nsecsElapsed();
                settle_.start(kSettleMs);
              }
            });
  }
  void arm() {
    armed_ = true;
    paintedSinceTurn_ = false;
    paints_ = 0;
    firstPaintNs_ = idleNs_ = -1;
    clock_.start();
  }
  // Waits for the paints and the settling time after them; false after `timeoutMs`.
  bool wait(int timeoutMs = 10000) {
    if (armed_) {
      // One timer, restarted: a single-shot per wait would outlive it and end a later one.
      timeout_.setSingleShot(true);
      timeout_.start(timeoutMs);
      loop_.exec();
      timeout_.stop();
      armed_ = false;
    }
    return idleNs_ >= 0;
  }
  double firstPaintMs() const { return static_cast<double>(firstPaintNs_) / 1e6; }
  double idleMs() const { return static_cast<double>(idleNs_) / 1e6; }
  int paints() const { return paints_; }

 protected:
  bool eventFilter(QObject* watched, QEvent* e) override {
    if (watched == w_ && e->type() == QEvent::Paint && armed_) {
      if (paints_++ == 0) firstPaintNs_ = clock_.nsecsElapsed();
      paintedSinceTurn_ = true;
      settle_.stop();
    }
    return false;
  }

 private:
  QWidget* w_;
  bool armed_ = false;
  bool paintedSinceTurn_ = false;
  int paints_ = 0;
  qint64 firstPaintNs_ = -1, idleNs_ = -1;
  QElapsedTimer clock_;
  QEventLoop loop_;
  QTimer timeout_;
  QTimer settle_;
};

void waitMs(int ms) {
  QEventLoop loop;
  QTimer::singleShot(ms, &loop, &QEventLoop::quit);
  loop.exec();
}

QListView* messageList(ui::MainWindow& w) {
  return w.chatView()->findChild<QListView*>(QStringLiteral("messages"));
}

ui::MessageDelegate* delegateOf(QListView* list) {
  return qobject_cast<ui::MessageDelegate*>(list->itemDelegate());
}

int intArg(const QStringList& args, const QString& name, int fallback) {
  const int i = static_cast<int>(args.indexOf(name));
  return i >= 0 && i + 1 < args.size() ? args[i + 1].toInt() : fallback;
}

QString strArg(const QStringList& args, const QString& name) {
  const int i = static_cast<int>(args.indexOf(name));
  return i >= 0 && i + 1 < args.size() ? args[i + 1] : QString();
}

// ---- open and scroll ---------------------------------------------------------------------

int runOpen(const QStringList& args) {
  const int n = intArg(args, QStringLiteral("--messages"), 10000);
  const int runs = intArg(args, QStringLiteral("--runs"), 5);
  const int steps = intArg(args, QStringLiteral("--steps"), 200);
  const QString shot = strArg(args, QStringLiteral("--screenshot"));

  QTemporaryDir dir;
  app::ChatStore store;
  if (!store.open(dir.filePath(QStringLiteral("history.sqlite")))) {
    std::fprintf(stderr, "store: %s\n", qPrintable(store.lastError()));
    return 1;
  }
  QElapsedTimer t;
  t.start();
  qint64 chars = 0;
  const qint64 id = makeLongConversation(store, n, &chars);
  if (id == 0) {
    std::fprintf(stderr, "import: %s\n", qPrintable(store.lastError()));
    return 1;
  }
  std::printf(
      "workload: 1 conversation, %d messages, %lld characters of Markdown and text "
      "(written in %lld ms)\n",
      n, static_cast<long long>(chars), static_cast<long long>(t.elapsed()));
  // A few short chats around it, as a sidebar has.
  for (int i = 0; i < 5; ++i) {
    const qint64 c = store.createConversation();
    store.appendMessage(c, QStringLiteral("user"), QStringLiteral("Short chat %1").arg(i),
                        ui::MessageState::Complete);
  }

  app::OpenAiChatBackend backend;  // not connected: nothing is sent here
  ui::MainWindow window(&backend, &store);
  window.resize(1200, 900);
  window.show();
  if (!QTest::qWaitForWindowExposed(&window)) return 1;
  waitMs(300);
  QListView* list = messageList(window);
  auto* sideList = window.sidebar()->findChild<QListView*>();
  if (!list || !sideList) return 1;
  PaintWatch watch(list->viewport());

  const auto clickConversation = [&](qint64 cid) {
    const QModelIndex idx = window.sidebar()->model()->index(window.sidebar()->model()->rowOf(cid));
    sideList->scrollTo(idx);
    QTest::mouseClick(sideList->viewport(), Qt::LeftButton, {}, sideList->visualRect(idx).center());
  };

  // Open it `runs` times, with a short chat opened between (so each open loads it afresh and
  // renders the visible messages anew: the model gives its messages new keys on every load).
  std::vector<double> loadMs, paintMs, idleMs;
  const qint64 other = store.conversations().value(0).id;
  for (int r = 0; r < runs; ++r) {
    clickConversation(other == id ? store.conversations().value(1).id : other);
    waitMs(200);
    auto* delegate = delegateOf(list);
    const int rendersBefore = delegate->renderCount();
    QElapsedTimer load;
    watch.arm();
    load.start();
    clickConversation(id);
    const double loaded = static_cast<double>(load.nsecsElapsed()) / 1e6;
    if (!watch.wait()) {
      std::fprintf(stderr, "open: no paint\n");
      return 1;
    }
    if (window.chatView()->model()->rowCount() != n) {
      std::fprintf(stderr, "open: %d rows shown, expected %d\n",
                   window.chatView()->model()->rowCount(), n);
      return 1;
    }
    loadMs.push_back(loaded);
    paintMs.push_back(watch.firstPaintMs());
    idleMs.push_back(watch.idleMs());
    std::printf(
        "open run %d: click→loaded %.1f ms, →first paint %.1f ms, →last paint done %.1f ms; %d "
        "paints, %d messages rendered\n",
        r + 1, loaded, watch.firstPaintMs(), watch.idleMs(), watch.paints(),
        delegate->renderCount() - rendersBefore);
    waitMs(200);
  }
  printStats("open: click → model loaded", stats(loadMs));
  {
    // Where the time goes: the store's read, the model's load without a view, and the rest
    // (the list laying out 10,000 rows and scrolling to the newest).
    std::vector<double> readMs, modelMs;
    for (int r = 0; r < runs; ++r) {
      QElapsedTimer c;
      c.start();
      const auto all = store.messages(id);
      readMs.push_back(static_cast<double>(c.nsecsElapsed()) / 1e6);
      ui::ConversationModel m;
      m.setStore(&store);
      c.start();
      m.load(id);
      modelMs.push_back(static_cast<double>(c.nsecsElapsed()) / 1e6);
    }
    printStats("  of which ChatStore::messages", stats(readMs));
    printStats("  of which ConversationModel::load", stats(modelMs));
  }
  printStats("open: click → first paint begins", stats(paintMs));
  printStats("open: click → last paint done", stats(idleMs));

  // Opened at the bottom (the newest message): scroll up one page per step.
  waitMs(300);
  if (!shot.isEmpty()) {
    window.grab().save(shot);
    std::printf("screenshot: %s\n", qPrintable(shot));
  }
  QScrollBar* bar = list->verticalScrollBar();
  auto* delegate = delegateOf(list);
  const int rendersBefore = delegate->renderCount();
  std::vector<double> stepMs;
  int extraPaints = 0;
  for (int s = 0; s < steps; ++s) {
    watch.arm();
    const int before = bar->value();
    bar->setValue(before - bar->pageStep());
    if (!watch.wait()) {
      std::fprintf(stderr, "scroll: no paint at step %d (value %d → %d of %d..%d)\n", s, before,
                   bar->value(), bar->minimum(), bar->maximum());
      break;
    }
    stepMs.push_back(watch.idleMs());
    extraPaints += watch.paints() - 1;
  }
  std::printf(
      "scroll: %d steps of one page (%d px), %d messages rendered, %d extra paints "
      "(rows laid out again), viewport %dx%d\n",
      static_cast<int>(stepMs.size()), bar->pageStep(), delegate->renderCount() - rendersBefore,
      extraPaints, list->viewport()->width(), list->viewport()->height());
  printStats("scroll: step → last paint done", stats(stepMs));
  return 0;
}

// ---- streaming ---------------------------------------------------------------------------

// The calling thread's CPU time: a gap with little of it was spent waiting for a core (the
// machine is shared), not working.
qint64 threadCpuNs() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<qint64>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// The app's history, with the wall time of the GUI thread's calls that write a streaming answer
// counted, so each gap can say how much of it was the store's.
class TimedStore : public app::ChatStore {
 public:
  void appendToMessage(qint64 messageId, const QString& text) override {
    QElapsedTimer t;
    t.start();
    app::ChatStore::appendToMessage(messageId, text);
    note(t.nsecsElapsed());
  }
  bool finishMessage(qint64 messageId, ui::MessageState state, const QString& traceJson) override {
    QElapsedTimer t;
    t.start();
    const bool ok = app::ChatStore::finishMessage(messageId, state, traceJson);
    finishMs = static_cast<double>(t.nsecsElapsed()) / 1e6;
    note(t.nsecsElapsed());
    return ok;
  }
  qint64 totalNs = 0;
  std::vector<double> callsMs;
  double finishMs = -1;

 private:
  void note(qint64 ns) {
    totalNs += ns;
    callsMs.push_back(static_cast<double>(ns) / 1e6);
  }
};

// A long Markdown answer cut into tokens of a word or a piece of punctuation with the space
// before it, as a model streams them.
QStringList answerTokens(int count) {
  std::mt19937 rng(11);
  QString text;
  while (text.size() < count * 6) text += answer(rng) + QStringLiteral("\n\n");
  QStringList tokens;
  QString cur;
  for (QChar c : std::as_const(text)) {
    if ((c.isSpace() || c.isPunct()) && !cur.trimmed().isEmpty()) {
      tokens.append(cur);
      cur.clear();
      if (tokens.size() == count) break;
    }
    cur += c;
  }
  return tokens;
}

// An OpenAI-compatible /v1/chat/completions that streams `tokens` at `rate` per second, on its
// own thread so the GUI thread's stalls cannot slow it down.
class SseServer : public QObject {
 public:
  SseServer(QStringList tokens, int rate) : tokens_(std::move(tokens)), rate_(rate) {}
  quint16 start() {
    server_ = new QTcpServer(this);
    server_->listen(QHostAddress::LocalHost);
    connect(server_, &QTcpServer::newConnection, this, [this] {
      QTcpSocket* s = server_->nextPendingConnection();
      auto* buf = new QByteArray;
      connect(s, &QTcpSocket::readyRead, this, [this, s, buf] {
        *buf += s->readAll();
        if (!buf->contains("\r\n\r\n")) return;
        delete buf;
        disconnect(s, &QTcpSocket::readyRead, this, nullptr);
        s->write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n");
        auto* timer = new QTimer(s);
        timer->setTimerType(Qt::PreciseTimer);
        auto* clock = new QElapsedTimer;
        clock->start();
        auto* sent = new int(0);
        // Each tick sends every token due by now, so the rate holds even if a tick is late.
        connect(timer, &QTimer::timeout, s, [this, s, timer, clock, sent] {
          const int due =
              std::min<int>(static_cast<int>(tokens_.size()),
                            static_cast<int>(clock->nsecsElapsed() * rate_ / 1000000000));
          for (; *sent < due; ++*sent) {
            QJsonObject delta{{QStringLiteral("content"), tokens_[*sent]}};
            QJsonObject choice{{QStringLiteral("index"), 0}, {QStringLiteral("delta"), delta}};
            QJsonObject chunk{{QStringLiteral("choices"), QJsonArray{choice}}};
            s->write("data: " + QJsonDocument(chunk).toJson(QJsonDocument::Compact) + "\n\n");
          }
          if (*sent == tokens_.size()) {
            timer->stop();
            s->write(
                "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}"
                "\n\ndata: [DONE]\n\n");
            s->disconnectFromHost();
            delete clock;
            delete sent;
          }
        });
        timer->start(1000 / rate_ > 1 ? 1000 / rate_ : 1);
      });
    });
    return server_->serverPort();
  }

 private:
  QStringList tokens_;
  int rate_;
  QTcpServer* server_ = nullptr;
};

int runStream(const QStringList& args) {
  const int rate = intArg(args, QStringLiteral("--rate"), 200);
  const int count = intArg(args, QStringLiteral("--tokens"), 3000);
  const int longN = intArg(args, QStringLiteral("--into-long"), 0);
  const QString shot = strArg(args, QStringLiteral("--screenshot"));

  QTemporaryDir dir;
  TimedStore store;
  if (!store.open(dir.filePath(QStringLiteral("history.sqlite")))) return 1;
  qint64 longId = 0;
  if (longN > 0) {
    qint64 chars = 0;
    longId = makeLongConversation(store, longN, &chars);
  }

  const QStringList tokens = answerTokens(count);
  QThread serverThread;
  auto* server = new SseServer(tokens, rate);
  server->moveToThread(&serverThread);
  serverThread.start();
  quint16 port = 0;
  QMetaObject::invokeMethod(
      server, [&] { port = server->start(); }, Qt::BlockingQueuedConnection);

  app::OpenAiChatBackend backend;
  backend.setEndpoint(QUrl(QStringLiteral("http://127.0.0.1:%1").arg(port)), QStringLiteral("k"),
                      QStringLiteral("bench"));
  // Connected before the window's own handlers (and the bench's `done` after them): the GUI
  // thread's CPU time in the app's handling of the finish (the model, the store, the list).
  qint64 finishCpuNs = -1;
  QObject::connect(&backend, &ui::ChatBackend::finished,
                   [&finishCpuNs] { finishCpuNs = -threadCpuNs(); });
  ui::MainWindow window(&backend, &store);
  window.resize(1200, 900);
  window.show();
  if (!QTest::qWaitForWindowExposed(&window)) return 1;
  if (longId > 0) window.chatView()->openConversation(longId);
  waitMs(500);

  // The probe: a 1 ms precise timer; every gap between its ticks is time the loop was busy.
  // Each gap also takes the GUI thread's CPU time over it and the store's share of it.
  struct Gap {
    double ms, endS, cpuMs, storeMs;
  };
  QElapsedTimer clock;
  std::vector<double> gaps;
  std::vector<Gap> gapAt;
  gaps.reserve(100000);
  gapAt.reserve(100000);
  qint64 last = -1, lastCpu = 0, lastStore = 0;
  QTimer probe;
  probe.setTimerType(Qt::PreciseTimer);
  QObject::connect(&probe, &QTimer::timeout, [&] {
    const qint64 now = clock.nsecsElapsed();
    const qint64 cpu = threadCpuNs();
    if (last >= 0) {
      gaps.push_back(static_cast<double>(now - last) / 1e6);
      gapAt.push_back({gaps.back(), static_cast<double>(now) / 1e9,
                       static_cast<double>(cpu - lastCpu) / 1e6,
                       static_cast<double>(store.totalNs - lastStore) / 1e6});
    }
    last = now;
    lastCpu = cpu;
    lastStore = store.totalNs;
  });

  int received = 0;
  qint64 firstNs = -1, lastNs = -1;
  QObject::connect(&backend, &ui::ChatBackend::tokenReceived, [&] {
    ++received;
    lastNs = clock.nsecsElapsed();
    if (firstNs < 0) firstNs = lastNs;
  });
  bool done = false;
  QObject::connect(&backend, &ui::ChatBackend::finished, [&] {
    finishCpuNs += threadCpuNs();
    done = true;
    static_cast<ProfilingApp*>(qApp)->finished = true;
  });
  QObject::connect(&backend, &ui::ChatBackend::failed, [&](const QString&, const QString& why) {
    std::fprintf(stderr, "stream failed: %s\n", qPrintable(why));
    done = true;
  });

  // Mid-stream (the growing answer as rendered piecewise), for a look.
  if (const QString mid = strArg(args, QStringLiteral("--screenshot-mid")); !mid.isEmpty()) {
    QTimer::singleShot(count * 500 / rate, &window, [&window, mid] { window.grab().save(mid); });
  }
  auto* profile =
      args.contains(QStringLiteral("--profile")) ? static_cast<ProfilingApp*>(qApp) : nullptr;
  if (profile) profile->profiling = true;
  clock.start();
  probe.start(1);
  window.chatView()->sendText(QStringLiteral("Explain the router, with code."));
  QElapsedTimer deadline;
  deadline.start();
  while (!done && deadline.elapsed() < 120000)
    QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents);
  waitMs(300);  // the last re-render of the finished answer
  probe.stop();
  if (profile) {
    profile->profiling = false;
    const auto print = [](const char* what, const std::map<QString, std::pair<qint64, int>>& m) {
      std::vector<std::pair<qint64, QString>> top;
      for (const auto& [key, v] : m) {
        top.emplace_back(v.first, QStringLiteral("%1 x%2").arg(key).arg(v.second));
      }
      std::sort(top.rbegin(), top.rend());
      std::printf("stream: GUI CPU by event %s (receiver, QEvent type, count: ms):", what);
      for (std::size_t i = 0; i < std::min<std::size_t>(8, top.size()); ++i) {
        std::printf(" %s: %.2f;", qPrintable(top[i].second),
                    static_cast<double>(top[i].first) / 1e6);
      }
      std::printf("\n");
    };
    print("while streaming", profile->byEvent);
    print("from the finish on", profile->byEventAtEnd);
  }

  const double seconds = static_cast<double>(lastNs - firstNs) / 1e9;
  std::printf(
      "stream: %d tokens of Markdown (%lld characters) at %d tok/s offered into %s; "
      "received %d in %.2f s = %.1f tok/s\n",
      count, static_cast<long long>(tokens.join(QString()).size()), rate,
      longN > 0 ? qPrintable(QStringLiteral("a conversation of %1 messages").arg(longN))
                : "a new chat",
      received, seconds, seconds > 0 ? (received - 1) / seconds : 0.0);
  const Stats g = stats(gaps);
  printStats("stream: GUI loop gaps (1 ms timer)", g);
  const auto over = std::count_if(gaps.begin(), gaps.end(), [](double x) { return x > 16.0; });
  std::printf("stream: gaps over 16 ms: %lld of %d; over 8 ms: %lld\n",
              static_cast<long long>(over), g.n,
              static_cast<long long>(
                  std::count_if(gaps.begin(), gaps.end(), [](double x) { return x > 8.0; })));
  // Own work or a wait for a core: the GUI thread's CPU time within the long gaps.
  std::vector<double> longCpu;
  for (const Gap& x : gapAt) {
    if (x.ms > 8.0) longCpu.push_back(x.cpuMs);
  }
  printStats("stream: GUI CPU in gaps over 8 ms", stats(longCpu));
  // The GUI thread's own work, which other processes' time slices do not inflate as they do the
  // wall-clock gaps: per 50 ms (one re-render of the growing answer) in the first and the last
  // 3 s of the tokens (it grew with the answer's length), and after the last token (the finished
  // answer: the store's finish, the whole rendering swapped in, its measuring and repaint).
  const auto cpuBetween = [&gapAt](double fromS, double toS) {
    double ms = 0;
    for (const Gap& x : gapAt) {
      if (x.endS > fromS && x.endS <= toS) ms += x.cpuMs;
    }
    return ms;
  };
  const double firstS = static_cast<double>(firstNs) / 1e9;
  const double lastS = static_cast<double>(lastNs) / 1e9;
  const double endS = gapAt.empty() ? lastS : gapAt.back().endS;
  double endMaxCpu = 0;
  for (const Gap& x : gapAt) {
    if (x.endS > lastS) endMaxCpu = std::max(endMaxCpu, x.cpuMs);
  }
  std::printf(
      "stream: GUI CPU %.1f ms in all (%.2f ms per 50 ms of tokens); per 50 ms: %.2f ms in the "
      "first 3 s, %.2f ms in the last 3 s; after the last token %.1f ms (%.1f ms in one gap)\n",
      cpuBetween(firstS, lastS), cpuBetween(firstS, lastS) * 0.05 / std::max(1e-9, lastS - firstS),
      cpuBetween(firstS, firstS + 3) / 60, cpuBetween(lastS - 3, lastS) / 60,
      cpuBetween(lastS, endS), endMaxCpu);
  printStats("stream: store writes (GUI thread)", stats(store.callsMs));
  std::printf(
      "stream: store writes took %.1f ms in all; the finished answer's %.2f ms, in the app's "
      "handlers of the finish that took %.2f ms of GUI CPU\n",
      static_cast<double>(store.totalNs) / 1e6, store.finishMs,
      static_cast<double>(finishCpuNs) / 1e6);
  if (const app::WalCheckpointer* c = store.checkpointer()) {
    std::printf(
        "stream: WAL checkpoints off the GUI thread: %d (%d failed); the last found %d pages and "
        "copied %d; WAL file %.1f MiB\n",
        c->checkpoints(), c->failures(), c->lastLogPages(), c->lastCopiedPages(),
        static_cast<double>(QFileInfo(store.path() + QStringLiteral("-wal")).size()) / 1048576.0);
  }
  std::sort(gapAt.begin(), gapAt.end(), [](const Gap& a, const Gap& b) { return a.ms > b.ms; });
  std::printf(
      "stream: longest gaps (ms @ s since the send [GUI CPU ms, store ms]; tokens came from "
      "%.2f to %.2f s):",
      static_cast<double>(firstNs) / 1e9, static_cast<double>(lastNs) / 1e9);
  for (std::size_t i = 0; i < std::min<std::size_t>(8, gapAt.size()); ++i) {
    std::printf(" %.1f@%.2f[%.1f,%.1f]", gapAt[i].ms, gapAt[i].endS, gapAt[i].cpuMs,
                gapAt[i].storeMs);
  }
  std::printf("\n");
  if (!shot.isEmpty()) window.grab().save(shot);
  QMetaObject::invokeMethod(
      server, [server] { delete server; }, Qt::BlockingQueuedConnection);
  serverThread.quit();
  serverThread.wait();
  return received == count ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  ProfilingApp app(argc, argv);
  // Not the user's settings: a window state saved by the app must not change the layout.
  QApplication::setOrganizationName(QStringLiteral("TidelaneBench"));
  const QStringList args = QApplication::arguments();
  std::printf("machine: %s, Qt %s, platform %s, %s\n", qPrintable(QSysInfo::prettyProductName()),
              qVersion(), qPrintable(QGuiApplication::platformName()),
              qPrintable(QSysInfo::currentCpuArchitecture()));
  if (args.value(1) == QLatin1String("open")) return runOpen(args);
  if (args.value(1) == QLatin1String("stream")) return runStream(args);
  std::fprintf(stderr, "usage: app_bench open|stream [options] (see the source)\n");
  return 2;
}
