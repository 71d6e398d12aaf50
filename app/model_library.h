// ModelLibrary: the GGUF models the bundled worker can run. A models directory the user
// owns (`<data-dir>/models`), plus the bundled default model, listed read-only. Each file is
// described by ReadModelInfo (size, architecture, quantisation, context length, parameters);
// a corrupt file is listed with its error, never trusted and never a crash.
//
// Models arrive through a ModelTransfer:
//  - ModelImport copies a local file (checked to be a GGUF model first) with progress;
//  - ModelDownload fetches a URL with QNetworkAccessManager into `<name>.gguf.part` with a
//    sidecar `<name>.gguf.part.json` (URL, expected SHA-256, size), so a pause, a dropped
//    connection or an app restart resumes where it stopped with an HTTP Range request. The
//    free space is checked against the size the server announces before a byte is written,
//    the SHA-256 is computed as the bytes arrive, and only a file whose hash matches the one
//    the user gave (if any) and that opens as a GGUF model is renamed into the library.
//    Hugging Face "blob" page links are turned into "resolve" (download) links.
// Nothing is lost on failure: a failed download keeps its .part for Resume; Cancel removes it.
//
// Threading: GUI thread. File copies and re-hashing a .part after a restart run on the
// global thread pool and report back through queued signals.
#pragma once

#include <QCryptographicHash>
#include <QFile>
#include <QHash>
#include <QList>
#include <QObject>
#include <QPointer>
#include <QString>
#include <QUrl>
#include <atomic>
#include <functional>
#include <memory>

#include "app/model_info.h"

class QNetworkAccessManager;
class QNetworkReply;

namespace tidelane::app {

class ModelLibrary;

class ModelTransfer : public QObject {
  Q_OBJECT

 public:
  enum class Kind { Download, Import };
  enum class State { Running, Paused, Failed, Done, Cancelled };

  Kind kind() const { return kind_; }
  State state() const { return state_; }
  QString fileName() const { return fileName_; }  // what it will be called in the library
  QString source() const { return source_; }      // the URL or the local path
  qint64 received() const { return received_; }
  qint64 total() const { return total_; }  // -1 while unknown
  QString error() const { return error_; }
  // Whether resume() can continue (a download that stopped, with its .part or from scratch).
  bool canResume() const {
    return state_ == State::Paused || (state_ == State::Failed && resumable_);
  }
  bool canPause() const { return kind_ == Kind::Download && state_ == State::Running; }

  virtual void pause() {}
  virtual void resume() {}
  // Stops and removes every partial file; the transfer then leaves the library's list.
  virtual void cancel() = 0;

 signals:
  void progress(qint64 received, qint64 total);
  void stateChanged(ModelTransfer::State state);
  // Done: `path` is the new model in the library.
  void completed(const QString& path);

 protected:
  ModelTransfer(Kind kind, ModelLibrary* library);
  void setState(State state, const QString& error = {}, bool resumable = false);
  void setProgress(qint64 received, qint64 total);

  ModelLibrary* library_;
  Kind kind_;
  State state_ = State::Paused;
  QString fileName_;
  QString source_;
  qint64 received_ = 0;
  qint64 total_ = -1;
  QString error_;
  bool resumable_ = false;
};

class ModelDownload : public ModelTransfer {
  Q_OBJECT

 public:
  ~ModelDownload() override;

  QUrl url() const { return url_; }
  QString expectedSha256() const { return expectedSha256_; }
  QString partPath() const;
  QString sidecarPath() const;
  QString finalPath() const;
  // Hex SHA-256 of the finished file (empty before).
  QString sha256() const { return sha256_; }

  void start();
  void pause() override;
  void resume() override;
  void cancel() override;

 private:
  friend class ModelLibrary;
  ModelDownload(ModelLibrary* library, QUrl url, QString fileName, QString expectedSha256);

  void writeSidecar() const;
  // Hashes what the .part already holds (after an app restart) off the GUI thread, then sends.
  void rehashThenSend();
  void send();
  bool onHeaders();  // false: the reply was refused (and aborted)
  void onReadyRead();
  void onFinished();
  void verifyAndInstall();
  void failKeepingPart(const QString& message);
  void discardPart();

  QUrl url_;
  QString expectedSha256_;
  QString sha256_;
  QPointer<QNetworkReply> reply_;
  QFile part_;
  std::shared_ptr<QCryptographicHash> hash_;  // shared with the re-hashing thread
  qint64 hashed_ = -1;  // bytes of the .part fed to hash_; -1: not hashed this session
  bool headersSeen_ = false;
  bool stopping_ = false;  // our own abort (pause, cancel, refusal): not a network error
  int restarts_ = 0;       // a server that ignores Range makes us start over, once per send
  std::shared_ptr<std::atomic<bool>> rehashCancel_;
};

class ModelImport : public ModelTransfer {
  Q_OBJECT

 public:
  ~ModelImport() override;
  void cancel() override;

 private:
  friend class ModelLibrary;
  ModelImport(ModelLibrary* library, QString sourcePath, QString fileName);
  void start();

  std::shared_ptr<std::atomic<bool>> cancel_ = std::make_shared<std::atomic<bool>>(false);
  QString tempPath_;
};

class ModelLibrary : public QObject {
  Q_OBJECT

 public:
  // Bytes free for new files in `dir` (QStorageInfo by default; tests inject their own).
  using FreeSpaceQuery = std::function<qint64(const QString& dir)>;

  // Creates `modelsDir` when missing; `bundledPath` (may be empty) is listed read-only.
  ModelLibrary(QString modelsDir, QString bundledPath, QObject* parent = nullptr);
  ~ModelLibrary() override;

  QString modelsDir() const { return modelsDir_; }
  QString bundledPath() const { return bundledPath_; }
  void setFreeSpaceQuery(FreeSpaceQuery query) { freeSpace_ = std::move(query); }
  qint64 freeSpace() const { return freeSpace_(modelsDir_); }
  // Kept free on top of a model's size, so a download never fills the disk to the last byte.
  static constexpr qint64 kReserveBytes = qint64{64} * 1000 * 1000;

  // The model the bundled worker runs now: it cannot be deleted.
  void setActiveModel(const QString& path);
  QString activeModel() const { return activeModel_; }

  // Bundled model first, then the directory's *.gguf files by name.
  const QList<ModelInfo>& models() const { return models_; }
  const ModelInfo* find(const QString& path) const;
  // Downloads and imports in progress, paused or failed (and downloads left paused by an
  // earlier run of the app, found by their sidecars).
  const QList<ModelTransfer*>& transfers() const { return transfers_; }

  // Re-reads the directory (files are re-read only when their size or time changed).
  void refresh();

  // Each returns null with `error` set when the request is refused at once (not a GGUF file,
  // a name already in the library, a malformed URL, not enough space for an import).
  ModelImport* importFile(const QString& path, QString* error);
  ModelDownload* download(const QUrl& url, const QString& expectedSha256, QString* error);
  // Deletes a model file. Refused for the bundled model and the active one.
  bool remove(const QString& path, QString* error);

  // https://huggingface.co/ORG/REPO/blob/REV/FILE → .../resolve/REV/FILE (the page → the file).
  static QUrl normalizeUrl(const QUrl& url);
  // A file name for the library from a URL ("model.gguf"); empty when none can be made.
  static QString fileNameFor(const QUrl& url);

  QNetworkAccessManager* network();

 signals:
  void modelsChanged();
  void transferAdded(ModelTransfer* transfer);
  void transferChanged(ModelTransfer* transfer);
  void transferRemoved(ModelTransfer* transfer);

 private:
  friend class ModelTransfer;
  friend class ModelDownload;
  friend class ModelImport;
  void adopt(ModelTransfer* transfer);
  void drop(ModelTransfer* transfer);
  void loadPendingDownloads();
  bool nameTaken(const QString& fileName) const;

  QString modelsDir_;
  QString bundledPath_;
  QString activeModel_;
  FreeSpaceQuery freeSpace_;
  QList<ModelInfo> models_;
  struct Cached {
    qint64 size;
    qint64 mtime;
    ModelInfo info;
  };
  QHash<QString, Cached> cache_;
  QList<ModelTransfer*> transfers_;
  QNetworkAccessManager* network_ = nullptr;
};

}  // namespace tidelane::app
