#include "app/model_info.h"

#include <QCoreApplication>
#include <QFileInfo>
#include <QLocale>
#include <map>

#include "router/engine/gguf.h"
#include "router/engine/model.h"

namespace tidelane::app {

QString FileTypeName(qint64 fileType) {
  // llama.cpp's llama_ftype (include/llama.h); gaps are types it has since removed.
  static const std::map<qint64, const char*> kNames = {
      {0, "F32"},      {1, "F16"},      {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},
      {8, "Q5_0"},     {9, "Q5_1"},     {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"},
      {13, "Q3_K_L"},  {14, "Q4_K_S"},  {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"},
      {18, "Q6_K"},    {19, "IQ2_XXS"}, {20, "IQ2_XS"}, {21, "Q2_K_S"}, {22, "IQ3_XS"},
      {23, "IQ3_XXS"}, {24, "IQ1_S"},   {25, "IQ4_NL"}, {26, "IQ3_S"},  {27, "IQ3_M"},
      {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"}, {31, "IQ1_M"},  {32, "BF16"},
      {36, "TQ1_0"},   {37, "TQ2_0"}};
  const auto it = kNames.find(fileType);
  return it == kNames.end() ? QString() : QString::fromLatin1(it->second);
}

QString HumanBytes(qint64 bytes) {
  return QLocale().formattedDataSize(bytes, 1, QLocale::DataSizeSIFormat);
}

QString HumanCount(qint64 count) {
  if (count >= 1'000'000'000) return QString::number(count / 1e9, 'f', 1) + QLatin1Char('B');
  if (count >= 1'000'000) return QString::number(count / 1e6, 'f', 1) + QLatin1Char('M');
  if (count >= 1'000) return QString::number(count / 1e3, 'f', 1) + QLatin1Char('K');
  return QString::number(count);
}

ModelInfo ReadModelInfo(const QString& path) {
  ModelInfo info;
  const QFileInfo fi(path);
  info.path = fi.absoluteFilePath();
  info.fileName = fi.fileName();
  info.name = fi.completeBaseName();
  info.sizeBytes = fi.size();
  if (!fi.isFile()) {
    info.error = QCoreApplication::translate("ModelInfo", "%1 is not a file").arg(path);
    return info;
  }
  auto opened = engine::GgufFile::Open(path.toStdString());
  if (!opened) {
    info.error = QCoreApplication::translate("ModelInfo", "Not a usable GGUF model: %1")
                     .arg(QString::fromStdString(opened.error()));
    return info;
  }
  const engine::GgufFile& f = **opened;
  if (auto name = f.GetString("general.name"); name && !name->empty()) {
    info.name = QString::fromStdString(*name);
  }
  const std::string arch = f.GetString("general.architecture").value_or(std::string());
  info.architecture = QString::fromStdString(arch);
  if (!arch.empty()) info.contextLength = f.GetInt(arch + ".context_length").value_or(0);
  if (auto ft = f.GetInt("general.file_type")) info.quantisation = FileTypeName(*ft);
  // Without a known file type, the type holding most of the bytes says how it is quantised
  // (norms and embeddings often stay F32 while the matrices are Q4_K).
  std::map<engine::TensorType, std::uint64_t> bytesByType;
  for (const auto& t : f.tensors()) {
    info.parameterCount += static_cast<qint64>(t.Elements());
    bytesByType[t.type] += t.bytes;
  }
  if (info.quantisation.isEmpty() && !bytesByType.empty()) {
    auto best = bytesByType.begin();
    for (auto it = bytesByType.begin(); it != bytesByType.end(); ++it) {
      if (it->second > best->second) best = it;
    }
    info.quantisation = QString::fromLatin1(engine::TensorTypeName(best->first).data(),
                                            engine::TensorTypeName(best->first).size());
  }
  if (arch.empty()) {
    info.error =
        QCoreApplication::translate("ModelInfo", "%1 has no general.architecture: not a model file")
            .arg(info.fileName);
    return info;
  }
  // What the worker will do with it: the engine's own checks (architecture, every tensor's
  // shape and type). Weights stay mapped, so this costs little more than the header.
  auto model = engine::Model::FromGguf(std::move(opened.value()));
  if (!model) {
    info.unsupported =
        QCoreApplication::translate("ModelInfo", "The bundled engine cannot run it: %1")
            .arg(QString::fromStdString(model.error()));
  }
  return info;
}

}  // namespace tidelane::app
