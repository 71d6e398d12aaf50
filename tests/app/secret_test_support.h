// Shared by the keychain tests: run a SecretStore call to its answer, and capture the log so
// a test can check that no secret reaches it.
#pragma once

#include <QString>
#include <QStringList>
#include <QTest>
#include <QtGlobal>

#include "app/secret_store.h"

namespace tidelane::test {

// Every message logged while a LogCapture is alive (the previous handler still sees them).
class LogCapture {
 public:
  LogCapture() { previous_ = qInstallMessageHandler(&LogCapture::handle); }
  ~LogCapture() { qInstallMessageHandler(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  static QStringList& lines() {
    static QStringList captured;
    return captured;
  }

 private:
  static void handle(QtMsgType type, const QMessageLogContext& context, const QString& message) {
    lines() << message;
    if (previous_) previous_(type, context, message);
  }
  static inline QtMessageHandler previous_ = nullptr;
};

// Runs one store call and waits for its answer (30 s at most: a keychain prompt nobody sees).
template <typename Call>
app::SecretResult await(Call call) {
  app::SecretResult out;
  bool done = false;
  call([&](const app::SecretResult& r) {
    out = r;
    done = true;
  });
  if (!QTest::qWaitFor([&] { return done; }, 30000))
    out = {app::SecretResult::Status::Failed, {}, QStringLiteral("no answer within 30 s")};
  return out;
}

}  // namespace tidelane::test
