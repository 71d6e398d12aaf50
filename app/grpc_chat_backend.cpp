#include "app/grpc_chat_backend.h"

#include <grpcpp/create_channel.h>

#include <QUuid>

#include "app/receipt_check.h"
#include "router/proto/auth.h"
#include "router/proto/tls.h"
#include "tidelane/v1/chat.grpc.pb.h"

namespace tidelane::app {
namespace {

QString laneName(v1::Lane lane) {
  switch (lane) {
    case v1::LANE_PREFILL:
      return QObject::tr("prefill");
    case v1::LANE_DECODE:
      return QObject::tr("decode");
    default:
      return QObject::tr("mixed");
  }
}

QString q(const std::string& s) {
  return QString::fromStdString(s);
}

}  // namespace

struct GrpcChatBackend::Call {
  QString id;
  v1::ChatRequest request;
  std::shared_ptr<v1::ChatService::Stub> stub;
  std::string token;
  grpc::ClientContext context;
  std::thread thread;
  std::atomic<bool> done{false};
};

GrpcChatBackend::GrpcChatBackend(QObject* parent) : ui::ChatBackend(parent) {}

GrpcChatBackend::~GrpcChatBackend() {
  for (auto& call : calls_) call->context.TryCancel();
  for (auto& call : calls_) {
    if (call->thread.joinable()) call->thread.join();
  }
  for (auto& t : listers_) t.join();
}

void GrpcChatBackend::setEndpoint(const QString& address, const QString& token,
                                  const QString& caFile) {
  const bool wasReady = isReady();
  address_ = address;
  token_ = token;
  lastError_.clear();
  stub_.reset();
  if (!address.isEmpty()) {
    try {
      tls::Files files;
      files.ca = caFile.toStdString();
      auto channel = grpc::CreateChannel(address.toStdString(), tls::ChannelCredentials(files));
      stub_ = std::shared_ptr<v1::ChatService::Stub>(v1::ChatService::NewStub(channel));
    } catch (const std::exception& e) {
      lastError_ = QString::fromStdString(e.what());
    }
  }
  if (wasReady != isReady() || isReady()) emit readyChanged(isReady());
}

QString GrpcChatBackend::describe() const {
  return tr("router at %1").arg(address_);
}

QString GrpcChatBackend::send(const QList<ui::ChatTurn>& conversation, int maxTokens) {
  ui::GenerationOptions options;
  options.maxTokens = maxTokens;
  return sendWith(conversation, options);
}

void GrpcChatBackend::requestModels() {
  auto stub = std::static_pointer_cast<v1::ChatService::Stub>(stub_);
  if (!stub) {
    QMetaObject::invokeMethod(
        this, [this] { emit modelsListed({}, tr("not connected to a router")); },
        Qt::QueuedConnection);
    return;
  }
  listers_.emplace_back([this, stub, token = token_.toStdString()] {
    grpc::ClientContext context;
    auth::AttachBearer(context, token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ListModelsResponse response;
    const grpc::Status status = stub->ListModels(&context, v1::ListModelsRequest(), &response);
    QStringList models;
    for (const auto& m : response.models()) models.append(q(m.id()));
    const QString error = status.ok() ? QString() : q(status.error_message());
    QMetaObject::invokeMethod(
        this, [this, models, error] { emit modelsListed(models, error); }, Qt::QueuedConnection);
  });
}

QString GrpcChatBackend::sendWith(const QList<ui::ChatTurn>& conversation,
                                  const ui::GenerationOptions& options) {
  reap();
  auto call = std::make_shared<Call>();
  call->id = QUuid::createUuid().toString(QUuid::WithoutBraces);
  call->request.set_request_id(call->id.toStdString());
  call->request.set_user("local");
  for (const auto& turn : conversation) {
    auto* m = call->request.add_messages();
    m->set_role(turn.role.toStdString());
    m->set_content(turn.content.toStdString());
  }
  if (!options.model.isEmpty()) call->request.set_model(options.model.toStdString());
  auto* sampling = call->request.mutable_sampling();
  if (options.maxTokens > 0) sampling->set_max_tokens(static_cast<uint32_t>(options.maxTokens));
  if (options.temperature >= 0) sampling->set_temperature(static_cast<float>(options.temperature));
  if (options.topP >= 0) sampling->set_top_p(static_cast<float>(options.topP));
  call->stub = std::static_pointer_cast<v1::ChatService::Stub>(stub_);
  call->token = token_.toStdString();
  QString id = call->id;
  if (!call->stub) {
    QMetaObject::invokeMethod(
        this, [this, id] { emit failed(id, tr("not connected to a router")); },
        Qt::QueuedConnection);
    return id;
  }
  auth::AttachBearer(call->context, call->token);
  calls_.insert(id, call);
  call->thread = std::thread([this, call] { run(call); });
  return id;
}

void GrpcChatBackend::cancel(const QString& id) {
  if (const auto it = calls_.find(id); it != calls_.end()) (*it)->context.TryCancel();
}

void GrpcChatBackend::reap() {
  for (auto it = calls_.begin(); it != calls_.end();) {
    if ((*it)->done) {
      if ((*it)->thread.joinable()) (*it)->thread.join();
      it = calls_.erase(it);
    } else {
      ++it;
    }
  }
}

// Runs on the call's own thread; every emit is queued to the GUI thread.
void GrpcChatBackend::run(const std::shared_ptr<Call>& call) {
  const QString id = call->id;
  const auto post = [this](auto fn) { QMetaObject::invokeMethod(this, fn, Qt::QueuedConnection); };
  auto reader = call->stub->Chat(&call->context, call->request);
  v1::ChatEvent e;
  bool ended = false;
  while (reader->Read(&e)) {
    switch (e.event_case()) {
      case v1::ChatEvent::kAccepted:
        post([=, this, a = e.accepted()] { emit accepted(id, a.queue_position(), a.eta_ms()); });
        break;
      case v1::ChatEvent::kRouted:
        post([=, this, r = e.routed()] { emit routed(id, q(r.node()), laneName(r.lane())); });
        break;
      case v1::ChatEvent::kToken:
        post([=, this, t = e.token()] { emit tokenReceived(id, t.index(), q(t.text())); });
        break;
      case v1::ChatEvent::kRedirected:
        post([=, this, r = e.redirected()] {
          emit redirected(id, q(r.from_node()), q(r.to_node()), q(r.reason()));
        });
        break;
      case v1::ChatEvent::kDegraded:
        post([=, this, reason = q(e.degraded().reason())] { emit degraded(id, reason); });
        break;
      case v1::ChatEvent::kDone: {
        const auto& d = e.done();
        ui::AnswerSummary s;
        s.promptTokens = static_cast<int>(d.usage().prompt_tokens());
        s.completionTokens = static_cast<int>(d.usage().completion_tokens());
        s.queueMs = d.timings().queue_ms();
        s.ttftMs = d.timings().ttft_ms();
        s.totalMs = d.timings().total_ms();
        s.tokensPerSecond = d.timings().decode_tok_s();
        s.finishReason = q(d.finish_reason());
        if (d.has_receipt()) s.receiptJson = receiptDocument(d.receipt());
        post([=, this] { emit finished(id, s); });
        ended = true;
        break;
      }
      case v1::ChatEvent::kError:
        post([=, this, m = q(e.error().message())] { emit failed(id, m); });
        ended = true;
        break;
      case v1::ChatEvent::EVENT_NOT_SET:
        break;
    }
  }
  const grpc::Status status = reader->Finish();
  if (!ended) {
    if (status.error_code() == grpc::StatusCode::CANCELLED) {
      ui::AnswerSummary s;
      s.finishReason = QStringLiteral("cancelled");
      post([=, this] { emit finished(id, s); });
    } else {
      const QString message =
          status.ok() ? tr("the router ended the answer early") : q(status.error_message());
      post([=, this] { emit failed(id, message); });
    }
  }
  call->done = true;
}

}  // namespace tidelane::app
