// Where API keys and tokens live. SecretStore is the small interface; three stores plug in:
//  - KeychainSecretStore: the system keychain through QtKeychain (service "tidelane"), the
//    default. QtKeychain's jobs are asynchronous, so the whole interface is.
//  - SessionSecretStore: memory only, gone when the app quits. Used when there is no
//    keychain service (and by tests).
//  - FileSecretStore: a JSON file readable only by the user (mode 0600) in the app's data
//    dir; only ever used when the user explicitly opts in, with a warning.
// SecretVault puts them together with the policy the app follows: try the keychain; when it
// says there is no keychain service, say so and keep secrets for the session only, unless
// the user chose the file.
//
// A secret never goes to QSettings or a log: messages name the key, never the value.
//
// Threading: GUI (or any one event-loop) thread. Callbacks always run later from the event
// loop, never inside the call, and never after the store is destroyed.
#pragma once

#include <QHash>
#include <QObject>
#include <QString>
#include <functional>
#include <memory>

namespace tidelane::app {

struct SecretResult {
  enum class Status {
    Ok,          // done (for a read: `secret` holds the value)
    NotFound,    // nothing stored under that key
    NoKeychain,  // no keychain service is running (no D-Bus session, no Secret Service)
    Denied,      // the keychain refused (locked, or the user said no)
    Failed,      // anything else; `message` says what
  };
  Status status = Status::Ok;
  QString secret;
  QString message;  // for the user; never contains the secret

  bool ok() const { return status == Status::Ok; }
};

class SecretStore : public QObject {
  Q_OBJECT

 public:
  using Callback = std::function<void(const SecretResult&)>;

  using QObject::QObject;
  // Where secrets go, for the user ("the system keychain", "this session only", a path).
  virtual QString describe() const = 0;
  virtual void write(const QString& key, const QString& secret, Callback done) = 0;
  virtual void read(const QString& key, Callback done) = 0;
  // Removing a key that is not there is Ok.
  virtual void remove(const QString& key, Callback done) = 0;
};

class KeychainSecretStore : public SecretStore {
  Q_OBJECT

 public:
  // `timeoutMs`: a keychain that does not answer (a prompt nobody sees) is reported as failed
  // instead of hanging the caller forever.
  explicit KeychainSecretStore(QString service = QStringLiteral("tidelane"), int timeoutMs = 20000,
                               QObject* parent = nullptr);
  QString describe() const override;
  void write(const QString& key, const QString& secret, Callback done) override;
  void read(const QString& key, Callback done) override;
  void remove(const QString& key, Callback done) override;

 private:
  QString service_;
  int timeoutMs_;
};

class SessionSecretStore : public SecretStore {
  Q_OBJECT

 public:
  using SecretStore::SecretStore;
  QString describe() const override;
  void write(const QString& key, const QString& secret, Callback done) override;
  void read(const QString& key, Callback done) override;
  void remove(const QString& key, Callback done) override;

 private:
  QHash<QString, QString> secrets_;
};

class FileSecretStore : public SecretStore {
  Q_OBJECT

 public:
  explicit FileSecretStore(QString path, QObject* parent = nullptr);
  QString describe() const override;
  QString path() const { return path_; }
  void write(const QString& key, const QString& secret, Callback done) override;
  void read(const QString& key, Callback done) override;
  void remove(const QString& key, Callback done) override;

 private:
  SecretResult load(QHash<QString, QString>* out) const;
  SecretResult save(const QHash<QString, QString>& secrets) const;
  void finish(Callback done, SecretResult result);

  QString path_;
};

// The app's policy over the stores above. Secrets read or written this session are also kept
// in memory, so a keychain that disappears mid-session loses nothing already entered.
class SecretVault : public QObject {
  Q_OBJECT

 public:
  enum class Mode {
    Keychain,     // the system keychain (default)
    SessionOnly,  // no keychain service: memory only, and the user is told so
    File,         // the user opted in to the 0600 file
  };

  // `keychain` is normally a KeychainSecretStore; `filePath` is where the opt-in file would go;
  // `useFile` is the user's remembered opt-in.
  SecretVault(std::unique_ptr<SecretStore> keychain, QString filePath, bool useFile,
              QObject* parent = nullptr);
  ~SecretVault() override;

  Mode mode() const { return mode_; }
  // Why the keychain is not used (empty while it works or before it was tried).
  QString keychainProblem() const { return keychainProblem_; }
  QString filePath() const { return filePath_; }
  // A line for the settings dialog: where a key entered now will be kept.
  QString describe() const;

  // The user's explicit choice: the 0600 file (true) or back to the keychain (false; the file
  // is then deleted, as it held only what the user chose to put there).
  void setUseFile(bool useFile);

  void write(const QString& key, const QString& secret, SecretStore::Callback done);
  void read(const QString& key, SecretStore::Callback done);
  void remove(const QString& key, SecretStore::Callback done);

  // Moves a plain-text secret an older version left in QSettings under `settingsKey` into the
  // vault under `key`, and removes it from QSettings once it is stored safely. With no such
  // value there is nothing to do; when the keychain cannot take it, it stays where it was (the
  // old behaviour) and `done` says why.
  void migrateFromSettings(const QString& settingsKey, const QString& key,
                           SecretStore::Callback done);

 signals:
  // The mode changed (e.g. the keychain turned out not to be there); describe() says how.
  void modeChanged(Mode mode);

 private:
  SecretStore* active();
  // Handles a keychain answer: NoKeychain switches to SessionOnly and is not an error for the
  // caller (the secret is kept for the session), but the message says so.
  enum class Op { Write, Read, Remove };
  SecretStore::Callback wrap(const QString& key, const QString& secret, Op op,
                             SecretStore::Callback done);

  std::unique_ptr<SecretStore> keychain_;
  std::unique_ptr<SessionSecretStore> session_;
  std::unique_ptr<FileSecretStore> file_;
  QString filePath_;
  Mode mode_ = Mode::Keychain;
  QString keychainProblem_;
};

// One secret the app keeps in a SecretVault (the OpenAI-compatible endpoint's API key, a remote
// router's bearer token): what the user entered this session, what the vault holds, and the
// read and write that keep the two in step, with a message for the user each time. Both
// secrets follow exactly the same rules, so the rules live here once.
//  - load(): moves a plain-text copy an older version left in QSettings (`legacySettingsKey`)
//    into the vault, then reads the vault; loaded() answers.
//  - setValue() + store(): writes a changed value (an empty one removes it); stored() answers.
//    An empty value before the vault was read means "nothing entered", not "delete": the vault
//    is read instead.
// The value itself is never part of a message.
class KeptSecret : public QObject {
  Q_OBJECT

 public:
  // `key`: the vault's key; `what`: the secret in words, for messages ("API key");
  // `legacySettingsKey`: where an older version may have left it in QSettings (empty: nowhere).
  KeptSecret(SecretVault* vault, QString key, QString what, QString legacySettingsKey = {},
             QObject* parent = nullptr);

  QString key() const { return key_; }
  // The value this session (entered, or read from the vault).
  QString value() const { return value_; }
  void setValue(const QString& value) { value_ = value; }
  bool isLoaded() const { return loaded_; }
  // Whether an older settings file still holds it in plain text.
  bool hasLegacyCopy() const;

  // Reads it; loaded() answers. A load() while one is on its way is answered by that one.
  void load();
  void store();
  // The vault moved the secret's home (the file opt-in): the next store() writes it again.
  void forgetStored() { stored_ = QStringLiteral("\n(moved)"); }

 signals:
  // The vault was read: `found` when it held the secret. `message` is for the user (empty when
  // there is nothing to say).
  void loaded(bool found, const QString& message);
  // The secret was stored (or removed) where the vault says; `message` says what happened.
  void stored(bool ok, const QString& message);

 private:
  SecretVault* vault_;
  QString key_;
  QString what_;
  QString legacySettingsKey_;
  QString value_;
  QString stored_;  // what the vault holds, so an unchanged value is not written again
  bool loaded_ = false;
  bool loading_ = false;  // a read is on its way: another load() waits for the same answer
};

}  // namespace tidelane::app
