// gRPC server reflection (grpc.reflection.v1alpha.ServerReflection), so that generic tools
// (grpcurl, grpc_cli, Postman) can list a Tidelane process's services and fetch their schemas.
//
// gRPC 1.51 ships reflection as a synchronous service, and one synchronous service makes a
// server keep request threads that take turns with the callback threads at polling every
// connection: on the router that was one more thread hand-off on the path of every chat
// request (docs/benchmarks/serving.md). This one uses the callback API like the rest.
//
// The schemas come from protobuf's generated pool: every .proto compiled into the process.
// Unauthenticated, like gRPC's own: the .proto files are public. Thread-safe: each stream is
// a reactor of its own, and the service holds only its immutable list of names.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace tidelane::proto {

class ReflectionService final
    : public grpc::reflection::v1alpha::ServerReflection::CallbackService {
 public:
  using Request = grpc::reflection::v1alpha::ServerReflectionRequest;
  using Response = grpc::reflection::v1alpha::ServerReflectionResponse;

  // `services`: the full names (`package.Service`) of what the server registers; ListServices
  // answers with them and this service's own name.
  explicit ReflectionService(std::vector<std::string> services);

  grpc::ServerBidiReactor<Request, Response>* ServerReflectionInfo(
      grpc::CallbackServerContext* context) override;

  // The answer to one request (what the stream writes back): a file with every file it
  // imports, transitively, each once; or an ErrorResponse (NOT_FOUND for an unknown file,
  // symbol, type or extension, INVALID_ARGUMENT for an empty request). Never throws.
  Response Answer(const Request& request) const;

 private:
  std::vector<std::string> services_;
};

}  // namespace tidelane::proto
