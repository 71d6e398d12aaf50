#include "app/worker_identity.h"

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QPointer>
#include <QTimer>
#include <exception>
#include <utility>

#include "app/secret_store.h"
#include "router/receipt/receipt.h"

namespace tidelane::app {
namespace {

using Status = SecretResult::Status;

// The public key of identity text, or an error message (never the text).
bool parse(const QByteArray& text, const QString& what, QString* publicKey, QString* error) {
  try {
    const receipt::Identity id =
        receipt::ParseIdentity(std::string_view(text.constData(), text.size()), what.toStdString());
    *publicKey = QString::fromStdString(id.PublicKeyHex());
    return true;
  } catch (const std::exception& e) {
    *error = QString::fromUtf8(e.what());
    return false;
  }
}

qint64 nowMs() {
  return QDateTime::currentMSecsSinceEpoch();
}

}  // namespace

WorkerIdentity::WorkerIdentity(SecretVault* vault, QString legacyFile, QObject* parent)
    : QObject(parent), vault_(vault), file_(std::move(legacyFile)) {}

QString WorkerIdentity::defaultFile() {
  const QString state = qEnvironmentVariable("XDG_STATE_HOME");
  if (!state.isEmpty()) return state + QStringLiteral("/tidelane/worker.key");
  const QString home = qEnvironmentVariable("HOME");
  if (!home.isEmpty()) return home + QStringLiteral("/.local/state/tidelane/worker.key");
  return {};
}

void WorkerIdentity::answer(const Outcome& outcome) {
  if (std::exchange(settled_, true)) return;
  if (done_) done_(outcome);
}

void WorkerIdentity::useFile(const QString& why) {
  Outcome o;
  o.file = file_;
  o.message = tr("The bundled worker keeps its signing key in %1 (readable only by you): %2")
                  .arg(QDir::toNativeSeparators(file_), why);
  // The file may not exist yet: the worker creates it (mode 0600) on first start.
  QTimer::singleShot(0, this, [this, o] { answer(o); });
}

void WorkerIdentity::adopt(const QByteArray& text, const QString& how) {
  Outcome o;
  QString error;
  if (!parse(text, tr("the keychain"), &o.publicKey, &error)) {
    useFile(error);
    return;
  }
  o.identity = text;
  o.message = tr("The bundled worker's signing key (public key %1) %2, in %3 ms")
                  .arg(o.publicKey, how)
                  .arg(nowMs() - startedMs_);
  answer(o);
}

void WorkerIdentity::resolve(Callback done) {
  done_ = std::move(done);
  startedMs_ = nowMs();
  if (vault_->mode() != SecretVault::Mode::Keychain) {
    // No keychain this session, or the user chose the file for their secrets: the worker's own
    // 0600 file is that choice for its key.
    useFile(vault_->mode() == SecretVault::Mode::File
                ? tr("secrets are kept in files, as chosen in the settings")
                : tr("no keychain service is running"));
    return;
  }
  QTimer::singleShot(kKeychainWaitMs, this, [this] {
    if (!settled_) {
      useFile(tr("the system keychain did not answer within %1 s; it is asked again at the next "
                 "start")
                  .arg(kKeychainWaitMs / 1000));
    }
  });
  QPointer<WorkerIdentity> self(this);
  vault_->read(keyName(), [self](const SecretResult& r) {
    if (!self || self->settled_) return;
    if (r.ok()) {
      const QByteArray text = r.secret.toUtf8();
      // A migration cut short (the app stopped between the write and the removal) leaves the
      // file behind: it goes once it is certain the keychain holds the same key.
      if (QFile::exists(self->file_)) {
        QString keychainKey, fileKey, error;
        QFile f(self->file_);
        const bool same =
            f.open(QIODevice::ReadOnly) && parse(text, tr("the keychain"), &keychainKey, &error) &&
            parse(f.readAll(), self->file_, &fileKey, &error) && keychainKey == fileKey;
        f.close();
        if (same && !QFile::remove(self->file_)) {
          qWarning("Cannot remove %s, whose key is already in the keychain",
                   qPrintable(self->file_));
        } else if (!same) {
          qWarning(
              "%s holds another key than the keychain's; the keychain's is used and the file "
              "left as it is",
              qPrintable(self->file_));
        }
      }
      self->adopt(text, tr("came from the system keychain"));
      return;
    }
    if (r.status != Status::NotFound) {
      self->useFile(r.message);
      return;
    }
    // Nothing in the keychain: the old file's key, else a new one, goes there.
    QByteArray text;
    const bool migrating = QFile::exists(self->file_);
    try {
      const receipt::Identity id = migrating ? receipt::LoadIdentityFile(self->file_.toStdString())
                                             : receipt::Identity::Generate();
      text = QByteArray::fromStdString(id.Serialize());
    } catch (const std::exception& e) {
      // A file with loose permissions or foreign content is the operator's to fix; the worker
      // says the same when it reads it.
      self->useFile(QString::fromUtf8(e.what()));
      return;
    }
    self->vault_->write(
        keyName(), QString::fromUtf8(text), [self, text, migrating](const SecretResult& w) {
          // Too late (the worker already runs on the file): the key may now be in the keychain
          // too, and the next start finds it there (and removes the file when it holds the same
          // key).
          if (!self || self->settled_) return;
          // A write the vault kept only for this session is no home for a key that must
          // outlive it.
          if (!w.ok() || self->vault_->mode() != SecretVault::Mode::Keychain) {
            self->useFile(w.message.isEmpty() ? tr("the keychain did not keep the key")
                                              : w.message);
            return;
          }
          if (migrating && !QFile::remove(self->file_)) {
            qWarning("The worker key is now in the keychain, but %s could not be removed",
                     qPrintable(self->file_));
          }
          self->adopt(text, migrating ? tr("was moved from %1 into the system keychain")
                                            .arg(QDir::toNativeSeparators(self->file_))
                                      : tr("was created in the system keychain"));
        });
  });
}

}  // namespace tidelane::app
