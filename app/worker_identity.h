// WorkerIdentity: the bundled worker's Ed25519 signing key (the identity its receipts are
// signed with, in router/receipt's text form) kept in the system keychain through the app's
// SecretVault, and handed to the worker over stdin (`tidelane-worker --identity-stdin`), so
// the key never touches the disk.
//
// resolve() decides, once per start:
//  - the keychain holds the key: use it (and remove a key file an interrupted migration left,
//    when it holds the same key);
//  - the keychain holds none, and the worker's key file (`defaultFile()`, mode 0600, what
//    older versions used) exists: its key is written to the keychain, and the file is removed
//    only once that write succeeded;
//  - neither: a new key is generated and written to the keychain;
//  - no keychain (no D-Bus session, no Secret Service or no keyring, the user's file opt-in,
//    a refusal, or anything the keychain cannot store): the 0600 file, as before, and the log
//    says so (never the key).
// The answer comes asynchronously (QtKeychain is); the supervisor starts the router meanwhile
// and only the worker waits for it. How long the keychain took is logged. A keychain that has
// not answered within kKeychainWaitMs (a locked keyring's prompt nobody has seen yet, a Secret
// Service started on demand with no keyring) does not hold the worker longer: it starts on the
// file for this run, the log says why, and nothing the late answer says is acted on (no key
// is written or removed), so the next start decides again.
//
// Threading: GUI (or any one event-loop) thread, like the SecretVault it uses.
#pragma once

#include <QByteArray>
#include <QObject>
#include <QString>
#include <functional>

namespace tidelane::app {

class SecretVault;

class WorkerIdentity : public QObject {
  Q_OBJECT

 public:
  struct Outcome {
    // The key text for --identity-stdin; empty: the worker keeps its key in `file`.
    QByteArray identity;
    QString file;
    QString publicKey;  // hex, when the key was read here (for the log and tests)
    QString message;    // what happened, for the log; never the key
  };
  using Callback = std::function<void(const Outcome&)>;

  // How long the bundled worker waits for the keychain (the router starts meanwhile).
  static constexpr int kKeychainWaitMs = 3000;

  // `legacyFile`: where the worker's key file is (and goes, without a keychain).
  WorkerIdentity(SecretVault* vault, QString legacyFile, QObject* parent = nullptr);

  // The key name in the keychain.
  static QString keyName() { return QStringLiteral("bundled-worker-identity"); }
  // Where tidelane-worker keeps its key when not told otherwise (router/worker/main.cc,
  // DefaultIdentityFile): $XDG_STATE_HOME/tidelane/worker.key, else
  // $HOME/.local/state/tidelane/worker.key. Mirrored here so the app finds the file to migrate
  // and names the same one for the fallback.
  static QString defaultFile();

  // Answers `done` once, later, from the event loop (never after this object is gone). Call
  // it once per object.
  void resolve(Callback done);

 private:
  void useFile(const QString& why);
  void adopt(const QByteArray& text, const QString& how);
  void answer(const Outcome& outcome);

  SecretVault* vault_;
  QString file_;
  Callback done_;
  bool settled_ = false;  // done_ was answered: later keychain answers change nothing
  qint64 startedMs_ = 0;
};

}  // namespace tidelane::app
