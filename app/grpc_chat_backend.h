// GrpcChatBackend: ui::ChatBackend over a Tidelane router's ChatService (the bundled one
// or a remote one). Each request streams on a thread of its own; events are re-emitted
// as Qt signals in the GUI thread.
//
// Threading: create, call and destroy in the GUI thread. The destructor cancels every
// request and joins its thread, so no signal arrives after it returns.
#pragma once

#include <QHash>
#include <QString>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "ui/chat_backend.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace tidelane::app {

class GrpcChatBackend : public ui::ChatBackend {
  Q_OBJECT

 public:
  explicit GrpcChatBackend(QObject* parent = nullptr);
  ~GrpcChatBackend() override;

  // Points the backend at a router; an empty address makes it not ready. With `caFile` (a
  // PEM CA bundle) the channel is TLS and the router must present a certificate it signed,
  // for its address; an unreadable CA file makes the backend not ready and says why in
  // lastError().
  void setEndpoint(const QString& address, const QString& token, const QString& caFile = {});
  QString lastError() const { return lastError_; }

  bool isReady() const override { return stub_ != nullptr; }
  QString describe() const override;
  QString send(const QList<ui::ChatTurn>& conversation, int maxTokens) override;
  // Carries the model and every sampling setting in the ChatRequest.
  QString sendWith(const QList<ui::ChatTurn>& conversation,
                   const ui::GenerationOptions& options) override;
  // ChatService.ListModels on a thread of its own (5 s deadline).
  void requestModels() override;
  void cancel(const QString& id) override;

 private:
  struct Call;
  void run(const std::shared_ptr<Call>& call);
  void reap();

  QString address_;
  QString token_;
  QString lastError_;
  std::shared_ptr<void> stub_;  // v1::ChatService::Stub, type-erased to keep gRPC out of the header
  QHash<QString, std::shared_ptr<Call>> calls_;
  std::vector<std::thread> listers_;  // ListModels calls, joined by the destructor
};

}  // namespace tidelane::app
