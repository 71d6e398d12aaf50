// What the model manager shows about a GGUF file, read with the engine's own loader
// (router/engine/gguf.h), so a file the manager lists as fine is one the worker can open, and
// a corrupt or truncated one gets the loader's precise error instead of a crash.
//
// Threading: ReadModelInfo is pure and safe from any thread.
#pragma once

#include <QString>

namespace tidelane::app {

struct ModelInfo {
  QString path;
  QString fileName;
  QString name;              // general.name, else the file name without .gguf
  qint64 sizeBytes = 0;      // on disk
  QString architecture;      // general.architecture, e.g. "llama"
  QString quantisation;      // general.file_type when known (e.g. "Q4_K_M"), else the dominant type
  qint64 contextLength = 0;  // <arch>.context_length; 0 when absent
  qint64 parameterCount = 0;  // elements of all tensors
  bool bundled = false;       // shipped with the app: read-only, cannot be deleted
  QString error;              // non-empty: the file cannot be read, and why
  // Non-empty: a valid GGUF file the bundled engine cannot run (another architecture, a
  // missing tensor), and why. Listed with its details, but not offered for use.
  QString unsupported;

  bool ok() const { return error.isEmpty(); }
  bool runnable() const { return ok() && unsupported.isEmpty(); }
};

ModelInfo ReadModelInfo(const QString& path);

// The quantisation name llama.cpp gives a general.file_type (llama_ftype) value; empty when
// the number is unknown.
QString FileTypeName(qint64 fileType);

// "1.2 GB", "840 MB": sizes for people (decimal units, as disks are sold).
QString HumanBytes(qint64 bytes);
// "3.6M", "7.2B".
QString HumanCount(qint64 count);

}  // namespace tidelane::app
