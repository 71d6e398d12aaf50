// tidelane-router: admits, queues and routes chat requests to the workers that join it.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/server_builder.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "router/core/admission.h"
#include "router/core/policy.h"
#include "router/proto/auth.h"
#include "router/server/http_server.h"
#include "router/server/ledger.h"
#include "router/server/services.h"

namespace {

int Run(int argc, char** argv) {
  using namespace tidelane;
  CLI::App cli{"tidelane-router: admission, fair queueing and soft routing for Tidelane workers"};
  std::string grpc_listen = "127.0.0.1:7443";
  std::string http_listen = "127.0.0.1:8080";
  std::string token_file;
  std::string data_dir;
  std::string policy = "tidal";
  unsigned no_worker_timeout_ms = 15000;
  cli.add_option("--grpc-listen", grpc_listen,
                 "gRPC address for chat, monitor and worker registry; port 0 picks a free one")
      ->capture_default_str();
  cli.add_option("--http-listen", http_listen,
                 "HTTP address for the OpenAI-compatible API, /metrics and /healthz; port 0 picks "
                 "a free one")
      ->capture_default_str();
  cli.add_option("--auth-token-file", token_file,
                 "File holding the bearer token every client and worker must present (mode 0600)")
      ->required();
  cli.add_option("--data-dir", data_dir,
                 "Directory for the router's durable state (the request ledger)")
      ->required();
  cli.add_option("--policy", policy, "Routing policy at start")
      ->check(CLI::IsMember(core::PolicyNames()))
      ->capture_default_str();
  cli.add_option("--no-worker-timeout-ms", no_worker_timeout_ms,
                 "How long a request waits for a first worker before it gets NO_WORKER")
      ->capture_default_str();
  CLI11_PARSE(cli, argc, argv);

  spdlog::set_default_logger(spdlog::stderr_color_mt("router"));

  server::RouterConfig config;
  try {
    config.token = auth::ReadTokenFile(token_file);
  } catch (const std::exception& e) {
    std::cerr << "tidelane-router: " << e.what() << "\n";
    return 2;
  }
  config.no_worker_timeout = std::chrono::milliseconds(no_worker_timeout_ms);
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    std::cerr << "tidelane-router: cannot create data dir " << data_dir << ": " << ec.message()
              << "\n";
    return 2;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::string ledger_error;
  const auto ledger = server::Ledger::Open(data_dir, &ledger_error);
  if (!ledger) {
    std::cerr << "tidelane-router: " << ledger_error << "\n";
    return 2;
  }
  if (const auto unfinished = ledger->Unfinished(); !unfinished.empty()) {
    spdlog::info("{} unfinished request(s) in the ledger; clients resume them by id",
                 unfinished.size());
  }

  server::NodeTable nodes(core::MakePolicy(policy, 0), core::MakeTidalAdmission());
  server::ChatPipeline pipeline(config, nodes, ledger.get());
  server::ChatServiceImpl chat(config, nodes, pipeline);
  server::RegistryServiceImpl registry(config, nodes);
  server::MonitorServiceImpl monitor(config, nodes);

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(grpc_listen, grpc::InsecureServerCredentials(), &grpc_port);
  builder.RegisterService(&chat);
  builder.RegisterService(&registry);
  builder.RegisterService(&monitor);
  auto grpc_server = builder.BuildAndStart();
  if (!grpc_server || grpc_port == 0) {
    std::cerr << "tidelane-router: cannot listen for gRPC on " << grpc_listen << "\n";
    return 1;
  }

  server::HttpServer http(config, nodes, pipeline);
  const auto http_bound = http.Start(http_listen);
  if (!http_bound) {
    std::cerr << "tidelane-router: cannot listen for HTTP on " << http_listen << ": "
              << http.LastError() << "\n";
    grpc_server->Shutdown();
    return 1;
  }

  const auto host = grpc_listen.substr(0, grpc_listen.rfind(':'));
  // The supervisor and tests wait for this exact line on stdout.
  std::printf("tidelane-router ready grpc=%s:%d http=%s\n", host.c_str(), grpc_port,
              http_bound->c_str());
  std::fflush(stdout);
  spdlog::info("router serving gRPC on {}:{}, HTTP on {}, policy {}", host, grpc_port, *http_bound,
               policy);

  int signal = 0;
  sigwait(&signals, &signal);
  spdlog::info("signal {}: shutting down", signal);
  monitor.Stop();
  nodes.Shutdown();
  pipeline.Shutdown();
  http.Stop();
  grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

}  // namespace

// Errors are reported where they happen; anything escaping is a bug, said plainly.
int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "fatal: " << e.what() << "\n";
    return 1;
  }
}
