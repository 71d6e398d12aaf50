#include "router/proto/reflection_service.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

namespace tidelane::proto {
namespace {

namespace pb = google::protobuf;
using grpc::reflection::v1alpha::ServerReflectionRequest;

// One request at a time, as clients use it: read, answer, write, read the next. With only one
// operation ever in flight the reactor needs no lock.
class ReflectionStream final
    : public grpc::ServerBidiReactor<ReflectionService::Request, ReflectionService::Response> {
 public:
  explicit ReflectionStream(const ReflectionService& service) : service_(service) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client has sent its last request
      Finish(grpc::Status::OK);
      return;
    }
    response_ = service_.Answer(request_);
    StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {  // the client went away
      Finish(grpc::Status::OK);
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  const ReflectionService& service_;
  ReflectionService::Request request_;
  ReflectionService::Response response_;
};

// `file` and, depth first, every file it imports that this answer has not carried yet: a
// client can build the whole schema from one answer (gRPC's own reflection does the same).
void AddFile(const pb::FileDescriptor* file, std::set<std::string>* added,
             ReflectionService::Response* response) {
  if (!added->insert(file->name()).second) return;
  pb::FileDescriptorProto proto;
  file->CopyTo(&proto);
  response->mutable_file_descriptor_response()->add_file_descriptor_proto(
      proto.SerializeAsString());
  for (int i = 0; i < file->dependency_count(); ++i) AddFile(file->dependency(i), added, response);
}

}  // namespace

ReflectionService::ReflectionService(std::vector<std::string> services)
    : services_(std::move(services)) {
  services_.push_back(grpc::reflection::v1alpha::ServerReflection::service_full_name());
}

grpc::ServerBidiReactor<ReflectionService::Request, ReflectionService::Response>*
ReflectionService::ServerReflectionInfo(grpc::CallbackServerContext* /*context*/) {
  return new ReflectionStream(*this);
}

ReflectionService::Response ReflectionService::Answer(const Request& request) const {
  Response response;
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  const auto fail = [&](grpc::StatusCode code, const std::string& message) {
    response.mutable_error_response()->set_error_code(code);
    response.mutable_error_response()->set_error_message(message);
  };
  const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
  std::set<std::string> added;
  switch (request.message_request_case()) {
    case ServerReflectionRequest::kListServices:
      for (const auto& name : services_) {
        response.mutable_list_services_response()->add_service()->set_name(name);
      }
      break;
    case ServerReflectionRequest::kFileByFilename:
      if (const auto* file = pool->FindFileByName(request.file_by_filename())) {
        AddFile(file, &added, &response);
      } else {
        fail(grpc::StatusCode::NOT_FOUND, "no file called '" + request.file_by_filename() + "'");
      }
      break;
    case ServerReflectionRequest::kFileContainingSymbol:
      if (const auto* file = pool->FindFileContainingSymbol(request.file_containing_symbol())) {
        AddFile(file, &added, &response);
      } else {
        fail(grpc::StatusCode::NOT_FOUND,
             "no symbol called '" + request.file_containing_symbol() + "'");
      }
      break;
    case ServerReflectionRequest::kFileContainingExtension: {
      const auto& wanted = request.file_containing_extension();
      const auto* type = pool->FindMessageTypeByName(wanted.containing_type());
      const auto* extension =
          type == nullptr ? nullptr : pool->FindExtensionByNumber(type, wanted.extension_number());
      if (extension != nullptr) {
        AddFile(extension->file(), &added, &response);
      } else {
        fail(grpc::StatusCode::NOT_FOUND, "no extension " +
                                              std::to_string(wanted.extension_number()) + " of '" +
                                              wanted.containing_type() + "'");
      }
      break;
    }
    case ServerReflectionRequest::kAllExtensionNumbersOfType:
      if (const auto* type = pool->FindMessageTypeByName(request.all_extension_numbers_of_type())) {
        std::vector<const pb::FieldDescriptor*> extensions;
        pool->FindAllExtensions(type, &extensions);
        auto* numbers = response.mutable_all_extension_numbers_response();
        numbers->set_base_type_name(type->full_name());
        for (const auto* e : extensions) numbers->add_extension_number(e->number());
      } else {
        fail(grpc::StatusCode::NOT_FOUND,
             "no message type called '" + request.all_extension_numbers_of_type() + "'");
      }
      break;
    case ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
      fail(grpc::StatusCode::INVALID_ARGUMENT, "the request asks for nothing");
      break;
  }
  return response;
}

}  // namespace tidelane::proto
