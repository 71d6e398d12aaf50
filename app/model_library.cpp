#include "app/model_library.h"

#include <QDateTime>
#include <QDir>
#include <QFileInfo>
#include <QFutureWatcher>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QRegularExpression>
#include <QSaveFile>
#include <QStorageInfo>
#include <QTimer>
#include <QtConcurrent/QtConcurrentRun>

namespace tidelane::app {
namespace {

constexpr qint64 kChunk = 4 << 20;

QString partSuffix() {
  return QStringLiteral(".part");
}
QString sidecarSuffix() {
  return QStringLiteral(".part.json");
}

// A link as shown and logged: without its query or user info, which may carry an access
// token (signed links), so no token ends up in a message or a log.
QString shown(const QUrl& url) {
  return url.toDisplayString(QUrl::RemoveQuery | QUrl::RemoveUserInfo | QUrl::RemoveFragment);
}

bool isSha256(const QString& s) {
  static const QRegularExpression re(QStringLiteral("^[0-9a-f]{64}$"));
  return re.match(s).hasMatch();
}

}  // namespace

// --- ModelTransfer -------------------------------------------------------------------------

ModelTransfer::ModelTransfer(Kind kind, ModelLibrary* library)
    : QObject(library), library_(library), kind_(kind) {}

void ModelTransfer::setState(State state, const QString& error, bool resumable) {
  state_ = state;
  error_ = error;
  resumable_ = resumable;
  if (!error.isEmpty()) qWarning("model manager: %s", qPrintable(error));
  emit stateChanged(state);
  emit library_->transferChanged(this);
}

void ModelTransfer::setProgress(qint64 received, qint64 total) {
  received_ = received;
  total_ = total;
  emit progress(received, total);
  emit library_->transferChanged(this);
}

// --- ModelDownload -------------------------------------------------------------------------

ModelDownload::ModelDownload(ModelLibrary* library, QUrl url, QString fileName,
                             QString expectedSha256)
    : ModelTransfer(Kind::Download, library),
      url_(std::move(url)),
      expectedSha256_(std::move(expectedSha256)) {
  fileName_ = std::move(fileName);
  source_ = shown(url_);
  part_.setFileName(partPath());
}

ModelDownload::~ModelDownload() {
  stopping_ = true;
  if (rehashCancel_) *rehashCancel_ = true;
  if (reply_) reply_->abort();
}

QString ModelDownload::partPath() const {
  return QDir(library_->modelsDir()).filePath(fileName_ + partSuffix());
}
QString ModelDownload::sidecarPath() const {
  return QDir(library_->modelsDir()).filePath(fileName_ + sidecarSuffix());
}
QString ModelDownload::finalPath() const {
  return QDir(library_->modelsDir()).filePath(fileName_);
}

void ModelDownload::writeSidecar() const {
  QJsonObject o{{QStringLiteral("url"), url_.toString()},
                {QStringLiteral("file"), fileName_},
                {QStringLiteral("sha256"), expectedSha256_},
                {QStringLiteral("total"), total_}};
  QSaveFile f(sidecarPath());
  if (!f.open(QIODevice::WriteOnly) || f.write(QJsonDocument(o).toJson()) < 0 || !f.commit()) {
    // Only resuming after a restart depends on it; the download itself goes on.
    qWarning("model manager: cannot write %s: %s", qPrintable(sidecarPath()),
             qPrintable(f.errorString()));
  }
}

void ModelDownload::start() {
  if (!QFileInfo::exists(partPath())) {
    hash_ = std::make_shared<QCryptographicHash>(QCryptographicHash::Sha256);
    hashed_ = 0;
  }
  resume();
}

void ModelDownload::resume() {
  if (!canResume()) return;
  const qint64 have = QFileInfo::exists(partPath()) ? QFileInfo(partPath()).size() : 0;
  if (!hash_ || hashed_ != have) {
    rehashThenSend();
  } else {
    send();
  }
}

void ModelDownload::rehashThenSend() {
  // After an app restart the hash of what the .part holds is unknown: reading gigabytes must
  // not freeze the window, so it is computed on the thread pool.
  setState(State::Running);
  if (rehashCancel_) *rehashCancel_ = true;
  rehashCancel_ = std::make_shared<std::atomic<bool>>(false);
  auto hash = std::make_shared<QCryptographicHash>(QCryptographicHash::Sha256);
  auto bytes = std::make_shared<qint64>(0);
  auto* watcher = new QFutureWatcher<QString>(this);
  connect(watcher, &QFutureWatcher<QString>::finished, this,
          [this, watcher, hash, bytes, cancel = rehashCancel_] {
            watcher->deleteLater();
            if (*cancel || state_ != State::Running) return;  // paused or cancelled meanwhile
            const QString error = watcher->result();
            if (!error.isEmpty()) {
              setState(State::Failed, error, true);
              return;
            }
            hash_ = hash;
            hashed_ = *bytes;
            send();
          });
  watcher->setFuture(QtConcurrent::run([path = partPath(), hash, bytes, cancel = rehashCancel_] {
    QFile f(path);
    if (!f.exists()) return QString();
    if (!f.open(QIODevice::ReadOnly)) {
      return QObject::tr("Cannot read %1: %2").arg(path, f.errorString());
    }
    while (!f.atEnd() && !*cancel) {
      const QByteArray buf = f.read(kChunk);
      if (buf.isEmpty()) return QObject::tr("Cannot read %1: %2").arg(path, f.errorString());
      hash->addData(buf);
      *bytes += buf.size();
    }
    return QString();
  }));
}

void ModelDownload::send() {
  stopping_ = false;
  headersSeen_ = false;
  if (!part_.isOpen() && !part_.open(QIODevice::WriteOnly | QIODevice::Append)) {
    setState(State::Failed, tr("Cannot write %1: %2").arg(partPath(), part_.errorString()), true);
    return;
  }
  const qint64 offset = part_.size();
  received_ = offset;
  QNetworkRequest request(url_);
  request.setAttribute(QNetworkRequest::RedirectPolicyAttribute,
                       QNetworkRequest::NoLessSafeRedirectPolicy);
  // Byte ranges must count the file's bytes, not a compressed stream's; naming an encoding
  // also stops Qt from asking for gzip behind our back.
  request.setRawHeader("Accept-Encoding", "identity");
  if (offset > 0) request.setRawHeader("Range", "bytes=" + QByteArray::number(offset) + "-");
  setState(State::Running);
  reply_ = library_->network()->get(request);
  connect(reply_, &QNetworkReply::readyRead, this, &ModelDownload::onReadyRead);
  connect(reply_, &QNetworkReply::finished, this, &ModelDownload::onFinished);
}

bool ModelDownload::onHeaders() {
  headersSeen_ = true;
  const int status = reply_->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
  const qint64 offset = part_.size();
  const qint64 length = reply_->header(QNetworkRequest::ContentLengthHeader).isValid()
                            ? reply_->header(QNetworkRequest::ContentLengthHeader).toLongLong()
                            : -1;
  const auto refuse = [this, status](const QString& message, bool keepPart) {
    stopping_ = true;
    // An error page finishes by itself (Qt has already flagged it); aborting it as well makes
    // Qt report the error twice.
    if (reply_->isRunning() && status < 400) reply_->abort();
    part_.close();
    if (!keepPart && QFileInfo(partPath()).size() == 0) discardPart();
    setState(State::Failed, message, true);
    return false;
  };
  if (status == 206) {
    // "bytes START-END/TOTAL": the server continues where the .part stops.
    static const QRegularExpression re(QStringLiteral("^bytes (\\d+)-(\\d+)/(\\d+|\\*)$"));
    const auto m = re.match(QString::fromLatin1(reply_->rawHeader("Content-Range")).trimmed());
    if (!m.hasMatch() || m.captured(1).toLongLong() != offset) {
      return refuse(tr("The server sent the wrong part of %1 (Content-Range \"%2\", expected "
                       "bytes from %3).")
                        .arg(fileName_, QString::fromLatin1(reply_->rawHeader("Content-Range")))
                        .arg(offset),
                    true);
    }
    total_ = m.captured(3) == QLatin1String("*") ? (length >= 0 ? offset + length : -1)
                                                 : m.captured(3).toLongLong();
  } else if (status == 200) {
    if (offset > 0) {
      // The server ignored the Range header and sends the whole file: start over.
      part_.resize(0);
      hash_ = std::make_shared<QCryptographicHash>(QCryptographicHash::Sha256);
      hashed_ = 0;
      received_ = 0;
    }
    total_ = length;
  } else {
    return refuse(tr("The server answered %1 %2 for %3.")
                      .arg(status)
                      .arg(reply_->attribute(QNetworkRequest::HttpReasonPhraseAttribute).toString(),
                           shown(url_)),
                  true);
  }
  if (total_ >= 0) {
    const qint64 need = total_ - part_.size();
    const qint64 free = library_->freeSpace();
    if (need + ModelLibrary::kReserveBytes > free) {
      return refuse(
          tr("Not enough free space in %1 to download %2: it needs %3 more (and %4 "
             "spare), but only %5 are free. Free some space, then Resume.")
              .arg(QDir::toNativeSeparators(library_->modelsDir()), fileName_, HumanBytes(need),
                   HumanBytes(ModelLibrary::kReserveBytes), HumanBytes(free)),
          false);
    }
  }
  writeSidecar();
  setProgress(part_.size(), total_);
  return true;
}

void ModelDownload::onReadyRead() {
  if (stopping_ || !reply_) return;
  if (!headersSeen_ && !onHeaders()) return;
  const QByteArray data = reply_->readAll();
  if (data.isEmpty()) return;
  if (part_.write(data) != data.size()) {
    stopping_ = true;
    const QString why = part_.errorString();
    reply_->abort();
    part_.close();
    setState(State::Failed,
             tr("Cannot write %1: %2 (is the disk full?). What was downloaded is kept; Resume "
                "continues from there.")
                 .arg(partPath(), why),
             true);
    hashed_ = -1;  // the .part may hold part of this chunk: hash it again on resume
    return;
  }
  hash_->addData(data);
  hashed_ += data.size();
  setProgress(hashed_, total_);
}

void ModelDownload::onFinished() {
  QNetworkReply* reply = reply_;
  if (!reply) return;
  reply->deleteLater();
  if (stopping_) {
    reply_ = nullptr;
    return;
  }
  const bool gotResponse = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).isValid();
  if (gotResponse && !headersSeen_ && !onHeaders()) {
    reply_ = nullptr;
    return;
  }
  if (gotResponse) onReadyRead();  // anything still buffered
  reply_ = nullptr;
  part_.flush();
  part_.close();
  if (reply->error() != QNetworkReply::NoError) {
    failKeepingPart(gotResponse
                        ? tr("The download of %1 stopped at %2 of %3: %4.")
                              .arg(fileName_, HumanBytes(received_),
                                   total_ >= 0 ? HumanBytes(total_) : tr("unknown"),
                                   reply->errorString())
                        : tr("Cannot reach %1: %2.").arg(url_.host(), reply->errorString()));
    return;
  }
  if (total_ >= 0 && received_ != total_) {
    failKeepingPart(tr("The server closed the connection after %1 of %2 of %3.")
                        .arg(HumanBytes(received_), HumanBytes(total_), fileName_));
    return;
  }
  verifyAndInstall();
}

void ModelDownload::failKeepingPart(const QString& message) {
  setState(State::Failed,
           received_ > 0 ? message + QLatin1Char(' ') +
                               tr("What was downloaded is kept; Resume continues from there.")
                         : message,
           true);
}

void ModelDownload::verifyAndInstall() {
  sha256_ = QString::fromLatin1(hash_->result().toHex());
  if (!expectedSha256_.isEmpty() && sha256_ != expectedSha256_) {
    discardPart();
    setState(State::Failed,
             tr("%1 failed the checksum: its SHA-256 is %2, not %3 as expected. It was not added "
                "to the library.")
                 .arg(fileName_, sha256_, expectedSha256_));
    return;
  }
  const ModelInfo info = ReadModelInfo(partPath());
  if (!info.ok()) {
    discardPart();
    setState(State::Failed, tr("%1 was downloaded but is not a usable model (%2). It was not "
                               "added to the library.")
                                .arg(fileName_, info.error));
    return;
  }
  if (QFileInfo::exists(finalPath())) {
    setState(State::Failed, tr("A model named %1 appeared in the library meanwhile; the download "
                               "is kept as %2.")
                                .arg(fileName_, partPath()));
    return;
  }
  if (!QFile::rename(partPath(), finalPath())) {
    setState(State::Failed,
             tr("Cannot move %1 into the library as %2.").arg(partPath(), finalPath()), true);
    return;
  }
  QFile::remove(sidecarPath());
  setState(State::Done);
  library_->refresh();
  emit completed(finalPath());
  library_->drop(this);
}

void ModelDownload::pause() {
  if (state_ != State::Running) return;
  if (rehashCancel_) *rehashCancel_ = true;
  // Whatever already arrived is written first, so the .part and the hash agree.
  if (reply_ && headersSeen_) onReadyRead();
  if (state_ != State::Running) return;  // writing it failed, and said so
  stopping_ = true;
  if (reply_) reply_->abort();
  part_.flush();
  part_.close();
  setState(State::Paused);
}

void ModelDownload::cancel() {
  stopping_ = true;
  if (rehashCancel_) *rehashCancel_ = true;
  if (reply_) reply_->abort();
  part_.close();
  discardPart();
  setState(State::Cancelled);
  library_->drop(this);
}

void ModelDownload::discardPart() {
  part_.close();
  QFile::remove(partPath());
  QFile::remove(sidecarPath());
  hash_ = std::make_shared<QCryptographicHash>(QCryptographicHash::Sha256);
  hashed_ = 0;
  received_ = 0;
}

// --- ModelImport ---------------------------------------------------------------------------

ModelImport::ModelImport(ModelLibrary* library, QString sourcePath, QString fileName)
    : ModelTransfer(Kind::Import, library) {
  source_ = std::move(sourcePath);
  fileName_ = std::move(fileName);
  tempPath_ = QDir(library->modelsDir()).filePath(fileName_ + QStringLiteral(".importing"));
}

ModelImport::~ModelImport() {
  *cancel_ = true;
}

void ModelImport::start() {
  setState(State::Running);
  total_ = QFileInfo(source_).size();
  auto copied = std::make_shared<std::atomic<qint64>>(0);
  auto* poll = new QTimer(this);
  poll->setInterval(100);
  connect(poll, &QTimer::timeout, this, [this, copied] { setProgress(*copied, total_); });
  poll->start();
  auto* watcher = new QFutureWatcher<QString>(this);
  connect(watcher, &QFutureWatcher<QString>::finished, this, [this, watcher, poll, copied] {
    watcher->deleteLater();
    poll->deleteLater();
    if (state_ != State::Running) return;  // cancelled
    const QString error = watcher->result();
    setProgress(*copied, total_);
    if (!error.isEmpty()) {
      QFile::remove(tempPath_);
      setState(State::Failed, error);
      return;
    }
    const QString final = QDir(library_->modelsDir()).filePath(fileName_);
    if (QFileInfo::exists(final) || !QFile::rename(tempPath_, final)) {
      QFile::remove(tempPath_);
      setState(State::Failed, tr("Cannot add %1 to the library: a file of that name is in the "
                                 "way or the folder is not writable.")
                                  .arg(fileName_));
      return;
    }
    setState(State::Done);
    library_->refresh();
    emit completed(final);
    library_->drop(this);
  });
  watcher->setFuture(QtConcurrent::run([from = source_, to = tempPath_, copied,
                                        cancel = cancel_]() -> QString {
    QFile in(from);
    QFile out(to);
    if (!in.open(QIODevice::ReadOnly)) {
      return QObject::tr("Cannot read %1: %2").arg(from, in.errorString());
    }
    if (!out.open(QIODevice::WriteOnly | QIODevice::Truncate)) {
      return QObject::tr("Cannot write %1: %2").arg(to, out.errorString());
    }
    while (!in.atEnd()) {
      if (*cancel) return QObject::tr("Cancelled");
      const QByteArray buf = in.read(kChunk);
      if (buf.isEmpty()) return QObject::tr("Cannot read %1: %2").arg(from, in.errorString());
      if (out.write(buf) != buf.size()) {
        return QObject::tr("Cannot write %1: %2 (is the disk full?)").arg(to, out.errorString());
      }
      *copied += buf.size();
    }
    if (!out.flush()) return QObject::tr("Cannot write %1: %2").arg(to, out.errorString());
    return QString();
  }));
}

void ModelImport::cancel() {
  *cancel_ = true;
  const bool running = state_ == State::Running;
  setState(State::Cancelled);
  // The copy thread may still hold the file open; removing the name is safe on POSIX and the
  // thread stops at its next chunk.
  if (running || QFileInfo::exists(tempPath_)) QFile::remove(tempPath_);
  library_->drop(this);
}

// --- ModelLibrary --------------------------------------------------------------------------

ModelLibrary::ModelLibrary(QString modelsDir, QString bundledPath, QObject* parent)
    : QObject(parent), modelsDir_(std::move(modelsDir)), bundledPath_(std::move(bundledPath)) {
  freeSpace_ = [](const QString& dir) { return QStorageInfo(dir).bytesAvailable(); };
  if (!QDir().mkpath(modelsDir_)) {
    qWarning("model manager: cannot create %s", qPrintable(modelsDir_));
  }
  // An import interrupted by a crash leaves only its temporary copy, which is useless.
  const auto stale = QDir(modelsDir_).entryInfoList({QStringLiteral("*.importing")}, QDir::Files);
  for (const QFileInfo& fi : stale) QFile::remove(fi.absoluteFilePath());
  refresh();
  loadPendingDownloads();
}

ModelLibrary::~ModelLibrary() {
  // Downloads stop where they are; their .part and sidecar stay for the next run.
  for (ModelTransfer* t : transfers_) delete t;
  transfers_.clear();
}

QNetworkAccessManager* ModelLibrary::network() {
  if (!network_) network_ = new QNetworkAccessManager(this);
  return network_;
}

void ModelLibrary::setActiveModel(const QString& path) {
  activeModel_ = path.isEmpty() ? QString() : QFileInfo(path).absoluteFilePath();
  emit modelsChanged();
}

const ModelInfo* ModelLibrary::find(const QString& path) const {
  const QString abs = QFileInfo(path).absoluteFilePath();
  for (const ModelInfo& m : models_) {
    if (m.path == abs) return &m;
  }
  return nullptr;
}

void ModelLibrary::refresh() {
  QStringList paths;
  if (!bundledPath_.isEmpty() && QFileInfo::exists(bundledPath_)) {
    paths << QFileInfo(bundledPath_).absoluteFilePath();
  }
  const auto files =
      QDir(modelsDir_)
          .entryInfoList({QStringLiteral("*.gguf")}, QDir::Files | QDir::Readable, QDir::Name);
  for (const QFileInfo& fi : files) paths << fi.absoluteFilePath();
  QList<ModelInfo> next;
  QHash<QString, Cached> cache;
  for (const QString& p : paths) {
    const QFileInfo fi(p);
    const qint64 mtime = fi.lastModified().toMSecsSinceEpoch();
    auto it = cache_.constFind(p);
    ModelInfo info = it != cache_.constEnd() && it->size == fi.size() && it->mtime == mtime
                         ? it->info
                         : ReadModelInfo(p);
    info.bundled = !bundledPath_.isEmpty() && p == QFileInfo(bundledPath_).absoluteFilePath();
    cache.insert(p, {fi.size(), mtime, info});
    next << info;
  }
  cache_ = std::move(cache);
  models_ = std::move(next);
  emit modelsChanged();
}

bool ModelLibrary::nameTaken(const QString& fileName) const {
  if (QFileInfo::exists(QDir(modelsDir_).filePath(fileName))) return true;
  for (const ModelTransfer* t : transfers_) {
    if (t->fileName() == fileName) return true;
  }
  return false;
}

void ModelLibrary::adopt(ModelTransfer* transfer) {
  transfers_ << transfer;
  emit transferAdded(transfer);
}

void ModelLibrary::drop(ModelTransfer* transfer) {
  if (!transfers_.removeOne(transfer)) return;
  emit transferRemoved(transfer);
  transfer->deleteLater();
}

void ModelLibrary::loadPendingDownloads() {
  const auto sidecars =
      QDir(modelsDir_)
          .entryInfoList({QStringLiteral("*") + sidecarSuffix()}, QDir::Files, QDir::Name);
  for (const QFileInfo& fi : sidecars) {
    QFile f(fi.absoluteFilePath());
    const QJsonObject o =
        f.open(QIODevice::ReadOnly) ? QJsonDocument::fromJson(f.readAll()).object() : QJsonObject();
    const QUrl url(o.value(QStringLiteral("url")).toString());
    const QString name = o.value(QStringLiteral("file")).toString();
    if (!url.isValid() || name.isEmpty() || name.contains(QLatin1Char('/')) ||
        fi.fileName() != name + sidecarSuffix()) {
      qWarning("model manager: ignoring the unreadable download record %s",
               qPrintable(fi.absoluteFilePath()));
      continue;
    }
    auto* d = new ModelDownload(this, url, name, o.value(QStringLiteral("sha256")).toString());
    d->total_ = o.value(QStringLiteral("total")).toInteger(-1);
    d->received_ = QFileInfo(d->partPath()).size();
    d->state_ = ModelTransfer::State::Paused;
    adopt(d);
  }
}

QUrl ModelLibrary::normalizeUrl(const QUrl& url) {
  QUrl u = url;
  const QString host = u.host().toLower();
  if (host == QLatin1String("huggingface.co") || host == QLatin1String("www.huggingface.co") ||
      host == QLatin1String("hf.co")) {
    // /ORG/REPO/blob/REV/PATH: the web page showing the file; /resolve/ is the file itself.
    QStringList parts = u.path().split(QLatin1Char('/'));
    if (parts.size() > 5 && parts[3] == QLatin1String("blob")) {
      parts[3] = QStringLiteral("resolve");
      u.setPath(parts.join(QLatin1Char('/')));
    }
  }
  return u;
}

QString ModelLibrary::fileNameFor(const QUrl& url) {
  QString name = url.fileName(QUrl::FullyDecoded);
  name.remove(QRegularExpression(QStringLiteral("[\\x00-\\x1f/\\\\]")));
  while (name.startsWith(QLatin1Char('.'))) name.remove(0, 1);
  if (name.isEmpty()) return {};
  if (!name.endsWith(QLatin1String(".gguf"), Qt::CaseInsensitive)) name += QStringLiteral(".gguf");
  return name;
}

ModelImport* ModelLibrary::importFile(const QString& path, QString* error) {
  const QFileInfo fi(path);
  if (!fi.isFile()) {
    *error = tr("%1 is not a file.").arg(path);
    return nullptr;
  }
  if (fi.absolutePath() == QFileInfo(modelsDir_).absoluteFilePath()) {
    *error = tr("%1 is already in the library.").arg(fi.fileName());
    return nullptr;
  }
  QString name = fi.fileName();
  if (!name.endsWith(QLatin1String(".gguf"), Qt::CaseInsensitive)) name += QStringLiteral(".gguf");
  if (nameTaken(name)) {
    *error = tr("A model named %1 is already in the library.").arg(name);
    return nullptr;
  }
  const ModelInfo info = ReadModelInfo(path);
  if (!info.ok()) {
    *error = tr("%1 cannot be imported. %2").arg(fi.fileName(), info.error);
    return nullptr;
  }
  const qint64 free = freeSpace();
  if (fi.size() + kReserveBytes > free) {
    *error = tr("Not enough free space in %1 to import %2: it needs %3 (and %4 spare), but only %5 "
                "are free.")
                 .arg(QDir::toNativeSeparators(modelsDir_), name, HumanBytes(fi.size()),
                      HumanBytes(kReserveBytes), HumanBytes(free));
    return nullptr;
  }
  auto* import = new ModelImport(this, fi.absoluteFilePath(), name);
  adopt(import);
  import->start();
  return import;
}

ModelDownload* ModelLibrary::download(const QUrl& input, const QString& expectedSha256,
                                      QString* error) {
  const QUrl url = normalizeUrl(input);
  if (!url.isValid() || url.host().isEmpty() ||
      (url.scheme() != QLatin1String("http") && url.scheme() != QLatin1String("https"))) {
    *error = tr("\"%1\" is not an http:// or https:// link.").arg(shown(input));
    return nullptr;
  }
  const QString sha = expectedSha256.trimmed().toLower();
  if (!sha.isEmpty() && !isSha256(sha)) {
    *error = tr("\"%1\" is not a SHA-256 checksum (64 hexadecimal digits).").arg(expectedSha256);
    return nullptr;
  }
  const QString name = fileNameFor(url);
  if (name.isEmpty()) {
    *error = tr("The link %1 does not name a file.").arg(shown(url));
    return nullptr;
  }
  if (nameTaken(name)) {
    *error = tr("A model named %1 is already in the library or being downloaded.").arg(name);
    return nullptr;
  }
  auto* d = new ModelDownload(this, url, name, sha);
  d->writeSidecar();
  adopt(d);
  d->start();
  return d;
}

bool ModelLibrary::remove(const QString& path, QString* error) {
  const QFileInfo fi(path);
  const QString abs = fi.absoluteFilePath();
  if (!bundledPath_.isEmpty() && abs == QFileInfo(bundledPath_).absoluteFilePath()) {
    *error = tr("The bundled model comes with the app and cannot be deleted.");
    return false;
  }
  if (!activeModel_.isEmpty() && abs == activeModel_) {
    *error = tr("%1 is the model in use. Choose another model first.").arg(fi.fileName());
    return false;
  }
  if (fi.absolutePath() != QFileInfo(modelsDir_).absoluteFilePath()) {
    *error = tr("%1 is not in the library folder %2.").arg(path, modelsDir_);
    return false;
  }
  QFile f(abs);
  if (!f.remove()) {
    *error = tr("Cannot delete %1: %2").arg(abs, f.errorString());
    return false;
  }
  refresh();
  return true;
}

}  // namespace tidelane::app
