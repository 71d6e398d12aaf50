#include "app/secret_store.h"

#include <qt6keychain/keychain.h>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QPointer>
#include <QSaveFile>
#include <QSettings>
#include <QTimer>

namespace tidelane::app {
namespace {

using Status = SecretResult::Status;

// Runs `done` from the event loop, as every store promises, unless `owner` is gone by then.
void later(QObject* owner, SecretStore::Callback done, SecretResult result) {
  QTimer::singleShot(0, owner, [done = std::move(done), result = std::move(result)] {
    if (done) done(result);
  });
}

// QtKeychain reports a missing D-Bus session or Secret Service sometimes as NoBackendAvailable
// and sometimes as OtherError carrying the D-Bus error text ("Cannot autolaunch D-Bus without
// X11 $DISPLAY", "Could not connect: No such file or directory", "Object does not exist at
// path /org/freedesktop/secrets/collection/login" when gnome-keyring was started on demand
// but has no keyring and no prompter to create one). All mean the same to the user: there is
// no keychain to store into.
bool looksLikeNoService(const QString& error) {
  static const char* const kMarks[] = {
      "D-Bus", "DBus", "dbus", "autolaunch", "Could not connect",
      "not provided by any .service files", "org.freedesktop.secrets", "ServiceUnknown", "NoReply",
      "Secret Service", "secret service", "kwallet",
      // A Secret Service with no keyring to store into (none
      // created, and no prompter to create one).
      "/org/freedesktop/secrets/collection", "Object does not exist at path"};
  for (const char* mark : kMarks) {
    if (error.contains(QLatin1String(mark))) return true;
  }
  return false;
}

SecretResult fromJob(const QKeychain::Job& job, bool isRemove) {
  SecretResult r;
  const QString detail = job.errorString();
  switch (job.error()) {
    case QKeychain::NoError:
      r.status = Status::Ok;
      break;
    case QKeychain::EntryNotFound:
      r.status = isRemove ? Status::Ok : Status::NotFound;
      if (!isRemove)
        r.message = QObject::tr("Nothing is stored in the keychain for %1.").arg(job.key());
      break;
    case QKeychain::AccessDenied:
    case QKeychain::AccessDeniedByUser:
      r.status = Status::Denied;
      r.message = QObject::tr("The system keychain refused access (%1).").arg(detail);
      break;
    case QKeychain::NoBackendAvailable:
      r.status = Status::NoKeychain;
      r.message = QObject::tr("No keychain service is running (%1).").arg(detail);
      break;
    case QKeychain::OtherError:
      if (looksLikeNoService(detail)) {
        r.status = Status::NoKeychain;
        r.message =
            QObject::tr("No keychain service is running, or it has no keyring to store into (%1).")
                .arg(detail);
        break;
      }
      [[fallthrough]];
    default:
      r.status = Status::Failed;
      r.message = QObject::tr("The system keychain failed: %1").arg(detail);
      break;
  }
  return r;
}

}  // namespace

// --- KeychainSecretStore -------------------------------------------------------------------

KeychainSecretStore::KeychainSecretStore(QString service, int timeoutMs, QObject* parent)
    : SecretStore(parent), service_(std::move(service)), timeoutMs_(timeoutMs) {}

QString KeychainSecretStore::describe() const {
  return tr("the system keychain");
}

namespace {

// Starts `job`, answers `done` once: when the job finishes or when the keychain has not
// answered within `timeoutMs`. The job has no parent and deletes itself once finished
// (autoDelete): QtKeychain's libsecret backend still calls into a job it is running, so a
// store destroyed mid-read (the app quitting while the worker's key is read) must not delete
// it. `done` is not called after the store is gone (the connection's context is the store).
void run(QObject* store, QKeychain::Job* job, int timeoutMs, bool isRemove,
         SecretStore::Callback done) {
  auto answered = std::make_shared<bool>(false);
  auto shared = std::make_shared<SecretStore::Callback>(std::move(done));
  QObject::connect(job, &QKeychain::Job::finished, store,
                   [answered, shared, isRemove](QKeychain::Job* j) {
                     if (*answered) return;
                     *answered = true;
                     SecretResult r = fromJob(*j, isRemove);
                     if (r.ok()) {
                       if (auto* read = qobject_cast<QKeychain::ReadPasswordJob*>(j))
                         r.secret = read->textData();
                     }
                     if (*shared) (*shared)(r);
                   });
  QTimer::singleShot(timeoutMs, store, [answered, shared, timeoutMs] {
    if (*answered) return;
    *answered = true;
    SecretResult r;
    r.status = Status::Failed;
    r.message = QObject::tr(
                    "The system keychain did not answer within %1 s (is it waiting for a "
                    "password prompt?).")
                    .arg(timeoutMs / 1000);
    if (*shared) (*shared)(r);
  });
  job->start();  // QtKeychain queues the work; `finished` always comes from the event loop
}

}  // namespace

void KeychainSecretStore::write(const QString& key, const QString& secret, Callback done) {
  auto* job = new QKeychain::WritePasswordJob(service_);  // no parent: see run()
  job->setAutoDelete(true);
  job->setInsecureFallback(false);  // never a plain-text file behind the user's back
  job->setKey(key);
  job->setTextData(secret);
  run(this, job, timeoutMs_, false, std::move(done));
}

void KeychainSecretStore::read(const QString& key, Callback done) {
  auto* job = new QKeychain::ReadPasswordJob(service_);  // no parent: see run()
  job->setAutoDelete(true);
  job->setInsecureFallback(false);
  job->setKey(key);
  run(this, job, timeoutMs_, false, std::move(done));
}

void KeychainSecretStore::remove(const QString& key, Callback done) {
  auto* job = new QKeychain::DeletePasswordJob(service_);  // no parent: see run()
  job->setAutoDelete(true);
  job->setInsecureFallback(false);
  job->setKey(key);
  run(this, job, timeoutMs_, true, std::move(done));
}

// --- SessionSecretStore --------------------------------------------------------------------

QString SessionSecretStore::describe() const {
  return tr("this session only");
}

void SessionSecretStore::write(const QString& key, const QString& secret, Callback done) {
  secrets_.insert(key, secret);
  later(this, std::move(done), {});
}

void SessionSecretStore::read(const QString& key, Callback done) {
  SecretResult r;
  const auto it = secrets_.constFind(key);
  if (it == secrets_.constEnd()) {
    r.status = Status::NotFound;
  } else {
    r.secret = *it;
  }
  later(this, std::move(done), r);
}

void SessionSecretStore::remove(const QString& key, Callback done) {
  secrets_.remove(key);
  later(this, std::move(done), {});
}

// --- FileSecretStore -----------------------------------------------------------------------

FileSecretStore::FileSecretStore(QString path, QObject* parent)
    : SecretStore(parent), path_(std::move(path)) {}

QString FileSecretStore::describe() const {
  return tr("the file %1 (readable only by you)").arg(QDir::toNativeSeparators(path_));
}

SecretResult FileSecretStore::load(QHash<QString, QString>* out) const {
  out->clear();
  QFile f(path_);
  if (!f.exists()) return {};
  if (!f.open(QIODevice::ReadOnly)) {
    return {Status::Failed, {}, tr("Cannot read %1: %2").arg(path_, f.errorString())};
  }
  QJsonParseError err;
  const QJsonDocument doc = QJsonDocument::fromJson(f.readAll(), &err);
  if (!doc.isObject()) {
    // The parser's message quotes no content, so it cannot leak a secret.
    return {Status::Failed,
            {},
            tr("%1 is not a valid secrets file (%2); it was left as it is.")
                .arg(path_, err.errorString())};
  }
  const QJsonObject o = doc.object();
  for (auto it = o.begin(); it != o.end(); ++it) out->insert(it.key(), it.value().toString());
  return {};
}

SecretResult FileSecretStore::save(const QHash<QString, QString>& secrets) const {
  if (!QDir().mkpath(QFileInfo(path_).absolutePath())) {
    return {Status::Failed, {}, tr("Cannot create the folder for %1").arg(path_)};
  }
  QJsonObject o;
  for (auto it = secrets.begin(); it != secrets.end(); ++it) o.insert(it.key(), it.value());
  QSaveFile f(path_);
  // The temporary file is made 0600 before a byte is written, and the rename keeps the mode,
  // so the secret is never readable by others, not even for a moment.
  if (!f.open(QIODevice::WriteOnly) ||
      !f.setPermissions(QFileDevice::ReadOwner | QFileDevice::WriteOwner) ||
      f.write(QJsonDocument(o).toJson(QJsonDocument::Indented)) < 0 || !f.commit()) {
    return {Status::Failed, {}, tr("Cannot write %1: %2").arg(path_, f.errorString())};
  }
  return {};
}

void FileSecretStore::finish(Callback done, SecretResult result) {
  later(this, std::move(done), std::move(result));
}

void FileSecretStore::write(const QString& key, const QString& secret, Callback done) {
  QHash<QString, QString> all;
  SecretResult r = load(&all);
  if (r.ok()) {
    all.insert(key, secret);
    r = save(all);
  }
  finish(std::move(done), r);
}

void FileSecretStore::read(const QString& key, Callback done) {
  QHash<QString, QString> all;
  SecretResult r = load(&all);
  if (r.ok()) {
    const auto it = all.constFind(key);
    if (it == all.constEnd()) {
      r.status = Status::NotFound;
    } else {
      r.secret = *it;
    }
  }
  finish(std::move(done), r);
}

void FileSecretStore::remove(const QString& key, Callback done) {
  QHash<QString, QString> all;
  SecretResult r = load(&all);
  if (r.ok() && all.remove(key) > 0) r = save(all);
  finish(std::move(done), r);
}

// --- SecretVault ---------------------------------------------------------------------------

SecretVault::SecretVault(std::unique_ptr<SecretStore> keychain, QString filePath, bool useFile,
                         QObject* parent)
    : QObject(parent),
      keychain_(std::move(keychain)),
      session_(std::make_unique<SessionSecretStore>()),
      file_(std::make_unique<FileSecretStore>(filePath)),
      filePath_(std::move(filePath)),
      mode_(useFile ? Mode::File : Mode::Keychain) {}

SecretVault::~SecretVault() = default;

QString SecretVault::describe() const {
  switch (mode_) {
    case Mode::Keychain:
      return tr("Stored in the system keychain.");
    case Mode::SessionOnly:
      return tr("No keychain service is running, so the key is kept for this session only and "
                "must be entered again after a restart. %1")
          .arg(keychainProblem_);
    case Mode::File:
      return tr("Stored in %1, readable only by you. Anyone with access to your account or its "
                "backups can read it.")
          .arg(QDir::toNativeSeparators(filePath_));
  }
  return {};
}

void SecretVault::setUseFile(bool useFile) {
  const Mode next = useFile                      ? Mode::File
                    : keychainProblem_.isEmpty() ? Mode::Keychain
                                                 : Mode::SessionOnly;
  if (next == mode_) return;
  if (mode_ == Mode::File && QFile::exists(filePath_) && !QFile::remove(filePath_)) {
    qWarning("Cannot remove the secrets file %s", qPrintable(filePath_));
  }
  mode_ = next;
  emit modeChanged(mode_);
}

SecretStore* SecretVault::active() {
  switch (mode_) {
    case Mode::Keychain:
      return keychain_.get();
    case Mode::SessionOnly:
      return session_.get();
    case Mode::File:
      return file_.get();
  }
  return session_.get();
}

SecretStore::Callback SecretVault::wrap(const QString& key, const QString& secret, Op op,
                                        SecretStore::Callback done) {
  QPointer<SecretVault> self(this);
  const Mode asked = mode_;
  return [self, key, secret, op, asked, done = std::move(done)](const SecretResult& r) {
    if (!self) return;
    if (asked == Mode::Keychain && r.status == Status::NoKeychain) {
      self->keychainProblem_ = r.message;
      if (self->mode_ == Mode::Keychain) {
        self->mode_ = Mode::SessionOnly;
        emit self->modeChanged(self->mode_);
      }
      // Carry on in memory: a write is kept for the session; a read finds what this session
      // has (usually nothing). The message still says there is no keychain.
      if (op == Op::Remove) {
        SecretResult out;  // the session copy is already gone; nothing else was stored
        out.message = r.message;
        if (done) done(out);
      } else if (op == Op::Write) {
        self->session_->write(key, secret, [done, r](const SecretResult& s) {
          SecretResult out = s;
          if (out.ok()) out.message = r.message;
          if (done) done(out);
        });
      } else {
        self->session_->read(key, [done, r](const SecretResult& s) {
          SecretResult out = s;
          if (!out.ok()) {
            out.status = Status::NoKeychain;
            out.message = r.message;
          }
          if (done) done(out);
        });
      }
      return;
    }
    if (op == Op::Read && asked == Mode::Keychain &&
        (r.status == Status::Failed || r.status == Status::Denied)) {
      // A keychain that fails now still gives back what was entered earlier this session.
      self->session_->read(key, [done, r](const SecretResult& s) {
        SecretResult out = s.ok() ? s : r;
        out.message = r.message;
        if (done) done(out);
      });
      return;
    }
    if (done) done(r);
  };
}

void SecretVault::write(const QString& key, const QString& secret, SecretStore::Callback done) {
  if (mode_ != Mode::SessionOnly) {
    // The session copy means a later read still finds the key if the keychain goes away.
    session_->write(key, secret, nullptr);
  }
  active()->write(key, secret, wrap(key, secret, Op::Write, std::move(done)));
}

void SecretVault::read(const QString& key, SecretStore::Callback done) {
  active()->read(key, wrap(key, {}, Op::Read, std::move(done)));
}

void SecretVault::remove(const QString& key, SecretStore::Callback done) {
  if (mode_ != Mode::SessionOnly) session_->remove(key, nullptr);
  active()->remove(key, wrap(key, {}, Op::Remove, std::move(done)));
}

void SecretVault::migrateFromSettings(const QString& settingsKey, const QString& key,
                                      SecretStore::Callback done) {
  QSettings settings;
  if (!settings.contains(settingsKey)) {
    later(this, std::move(done), {Status::NotFound, {}, {}});
    return;
  }
  const QString secret = settings.value(settingsKey).toString();
  QPointer<SecretVault> self(this);
  write(key, secret, [self, settingsKey, done](const SecretResult& r) {
    // Only a durable store may take the secret out of the settings file; a session copy would
    // be lost at exit. (write() has put a session copy in memory either way.)
    if (self && r.ok() && self->mode_ != Mode::SessionOnly) {
      QSettings s;
      s.remove(settingsKey);
      s.sync();
    }
    if (done) done(r);
  });
}

// --- KeptSecret ----------------------------------------------------------------------------

KeptSecret::KeptSecret(SecretVault* vault, QString key, QString what, QString legacySettingsKey,
                       QObject* parent)
    : QObject(parent),
      vault_(vault),
      key_(std::move(key)),
      what_(std::move(what)),
      legacySettingsKey_(std::move(legacySettingsKey)) {}

bool KeptSecret::hasLegacyCopy() const {
  return !legacySettingsKey_.isEmpty() && QSettings().contains(legacySettingsKey_);
}

void KeptSecret::load() {
  if (loading_) return;
  loading_ = true;
  QPointer<KeptSecret> self(this);
  auto read = [self](const QString& note) {
    if (!self) return;
    self->vault_->read(self->key_, [self, note](const SecretResult& r) {
      if (!self) return;
      self->loaded_ = true;
      self->loading_ = false;
      if (r.ok()) {
        self->stored_ = r.secret;
        // What the user entered meanwhile wins over what was stored.
        if (self->value_.isEmpty()) self->value_ = r.secret;
      }
      QString message = note;
      if (message.isEmpty() && r.status == Status::NoKeychain) {
        message = self->vault_->describe();
      } else if (message.isEmpty() && !r.ok() && r.status != Status::NotFound) {
        message = tr("Cannot read the %1: %2").arg(self->what_, r.message);
      }
      emit self->loaded(r.ok(), message);
    });
  };
  if (legacySettingsKey_.isEmpty()) {
    read({});
    return;
  }
  // Versions before the keychain never wrote secrets to the settings file, but a hand-edited
  // or imported one may hold one: move it into the keychain.
  vault_->migrateFromSettings(legacySettingsKey_, key_, [self, read](const SecretResult& migrated) {
    if (!self) return;
    QString note;
    if (migrated.status != Status::NotFound &&
        (!migrated.ok() || self->vault_->mode() == SecretVault::Mode::SessionOnly)) {
      note =
          tr("The %1 in the settings file was left there: %2").arg(self->what_, migrated.message);
    }
    read(note);
  });
}

void KeptSecret::store() {
  if (value_ == stored_) return;
  if (!loaded_ && value_.isEmpty()) {
    // An empty field before the stored value was read means "nothing entered", not "delete".
    load();
    return;
  }
  const QString value = value_;
  QPointer<KeptSecret> self(this);
  auto done = [self, value](const SecretResult& r) {
    if (!self) return;
    QString message;
    if (!r.ok()) {
      message = tr("The %1 could not be stored: %2 It is kept for this session only.")
                    .arg(self->what_, r.message);
    } else if (self->vault_->mode() == SecretVault::Mode::SessionOnly) {
      self->stored_ = value;
      message = self->vault_->describe();
    } else {
      self->stored_ = value;
      const QString where = self->vault_->mode() == SecretVault::Mode::File
                                ? QDir::toNativeSeparators(self->vault_->filePath())
                                : tr("the system keychain");
      message = value.isEmpty() ? tr("The %1 was removed from %2.").arg(self->what_, where)
                                : tr("The %1 was stored in %2.").arg(self->what_, where);
    }
    emit self->stored(r.ok(), message);
  };
  if (value.isEmpty()) {
    vault_->remove(key_, done);
  } else {
    vault_->write(key_, value, done);
  }
}

}  // namespace tidelane::app
