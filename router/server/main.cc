// tidelane-router: admits, queues and routes chat requests to the workers that join it.
#include <grpcpp/server_builder.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "router/core/admission.h"
#include "router/core/policy.h"
#include "router/core/router_setup.h"
#include "router/proto/auth.h"
#include "router/proto/listen_address.h"
#include "router/proto/reflection_service.h"
#include "router/proto/runtime.h"
#include "router/proto/tls.h"
#include "router/receipt/receipt.h"
#include "router/server/http_server.h"
#include "router/server/ledger.h"
#include "router/server/services.h"

namespace {

int Run(int argc, char** argv) {
  using namespace tidelane;
  proto::UseReleaseLocking();
  CLI::App cli{"tidelane-router: admission, fair queueing and soft routing for Tidelane workers"};
  std::string grpc_listen = "127.0.0.1:7443";
  std::string http_listen = "127.0.0.1:8080";
  std::string token_file;
  std::string data_dir;
  std::string policy = "tidal";
  unsigned no_worker_timeout_ms = 15000;
  unsigned stall_timeout_ms = 30000;
  cli.add_option("--grpc-listen", grpc_listen,
                 "gRPC address for chat, monitor and worker registry: HOST:PORT (port 0 picks a "
                 "free one) or unix:PATH, a socket only this user can open (for clients and "
                 "workers on this machine)")
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
  cli.add_option("--stall-timeout-ms", stall_timeout_ms,
                 "A worker silent this long on a running request (no token, no KV chunk) is "
                 "taken for stalled: the request continues on another worker at its next token")
      ->check(CLI::Range(100u, 3600000u))
      ->capture_default_str();
  double ledger_max_mb = 0;
  cli.add_option("--ledger-max-mb", ledger_max_mb,
                 "Most disk the request ledger may take, in MiB, its write-ahead log included "
                 "(0: as much as the disk allows; the log then adds at most about 64 MiB). "
                 "Near it the oldest answered requests are deleted to make room; with none "
                 "left, new requests are refused with a clear error, as on a full disk, and "
                 "requests already running go on")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  double ledger_retention_hours = 168;
  cli.add_option("--ledger-retention-hours", ledger_retention_hours,
                 "How long the ledger keeps a finished request (its answer for Resume, its "
                 "receipt) after it ended, and a request a stopped router left unfinished that no "
                 "client resumed; 0: for ever. Requests this router runs are always kept")
      ->check(CLI::Range(0.0, 1e6))  // a million hours: beyond, the milliseconds overflow
      ->capture_default_str();
  std::string identity_file;
  cli.add_option("--identity-file", identity_file,
                 "Ed25519 key that countersigns receipts (mode 0600; created when absent; "
                 "default: DATA_DIR/router.key)");
  std::string admission = "tidal";
  cli.add_option("--admission", admission,
                 "Front door: tidal (admission control, fair queue, degrade) or none (every "
                 "request goes straight to a node, as the published baselines do)")
      ->check(CLI::IsMember({"tidal", "none"}))
      ->capture_default_str();
  bool tide = false;
  cli.add_flag("--tide", tide,
               "Run the lane controller live under the tidal policies: nodes move between the "
               "mixed, prefill and decode lanes as demand shifts. Off by default: on the Azure "
               "trace it doubled the time to first token (docs/benchmarks/serving.md)");
  std::string client_tokens_file;
  cli.add_option("--client-tokens-file", client_tokens_file,
                 "Further tokens chat clients may present, one per line (mode 0600); each is "
                 "rate limited on its own. Workers and admin calls use --auth-token-file's");
  double rate_limit = 0;
  double rate_burst = 0;
  cli.add_option("--rate-limit", rate_limit,
                 "Chat requests per second allowed per client token (0: unlimited)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cli.add_option("--rate-burst", rate_burst,
                 "Requests a client token may send at once above --rate-limit (default: "
                 "max(1, 10 s of the rate))")
      ->check(CLI::NonNegativeNumber);
  server::SplitOptions split;
  cli.add_option("--split-min-prompt-tokens", split.min_prompt_tokens,
                 "Prompts shorter than this (in estimated tokens) are never split between a "
                 "prefill and a decode worker: the KV handoff would cost more than it saves")
      ->capture_default_str();
  tls::Files tls_files;
  cli.add_option("--tls-cert", tls_files.cert,
                 "PEM certificate chain: serve gRPC and HTTP over TLS (with --tls-key)");
  cli.add_option("--tls-key", tls_files.key,
                 "PEM private key of --tls-cert (not readable by others)");
  cli.add_option("--tls-ca", tls_files.ca,
                 "PEM CA bundle: workers must present a client certificate it signed (mutual "
                 "TLS), and the router verifies the workers it calls against it");
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
  config.stall_timeout = std::chrono::milliseconds(stall_timeout_ms);
  config.client_tokens = {config.token};
  try {
    if (!client_tokens_file.empty()) {
      for (auto& t : auth::ReadTokenListFile(client_tokens_file)) {
        config.client_tokens.push_back(std::move(t));
      }
    }
    tls::Validate(tls_files);
  } catch (const std::exception& e) {
    std::cerr << "tidelane-router: " << e.what() << "\n";
    return 2;
  }
  config.tls = tls_files;
  // Before the ledger opens: a socket another router serves on fails at once.
  std::unique_ptr<proto::ListenAddress> grpc_address;
  try {
    grpc_address = std::make_unique<proto::ListenAddress>(
        grpc_listen, tls_files.serves_tls() ? proto::ListenAddress::Security::kTls
                                            : proto::ListenAddress::Security::kPlaintext);
  } catch (const std::exception& e) {
    std::cerr << "tidelane-router: " << e.what() << "\n";
    return 2;
  }
  config.rate_limit.rate_per_s = rate_limit;
  config.rate_limit.burst = rate_burst > 0 ? rate_burst : std::max(1.0, 10 * rate_limit);
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    std::cerr << "tidelane-router: cannot create data dir " << data_dir << ": " << ec.message()
              << "\n";
    return 2;
  }

  if (identity_file.empty())
    identity_file = (std::filesystem::path(data_dir) / "router.key").string();
  try {
    config.identity = receipt::LoadOrCreateIdentity(identity_file);
  } catch (const std::exception& e) {
    std::cerr << "tidelane-router: " << e.what() << "\n";
    return 2;
  }
  spdlog::info("countersigning receipts as {}", config.identity->PublicKeyHex());
  if (!config.identity->secret_key.locked()) {
    // Not an error: RLIMIT_MEMLOCK is often small. The key is still kept out of core dumps
    // and wiped when freed; it may be swapped out.
    spdlog::debug(
        "could not lock the router's secret key in memory (RLIMIT_MEMLOCK); it may "
        "be written to swap");
  }

  // Every HTTP client and every gRPC stream holds a descriptor; a surge of ten thousand users
  // needs more than the usual soft limit of 1024, and the hard limit is ours to take.
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &files) != 0) {
      spdlog::warn("cannot raise the open-file limit: {}", std::strerror(errno));
    }
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::string ledger_error;
  server::LedgerRetention retention;
  retention.finished_for =
      std::chrono::milliseconds(static_cast<std::int64_t>(ledger_retention_hours * 3600 * 1000));
  const auto ledger =
      server::Ledger::Open(data_dir, &ledger_error,
                           static_cast<std::uint64_t>(ledger_max_mb * 1024 * 1024), {}, retention);
  if (!ledger) {
    std::cerr << "tidelane-router: " << ledger_error << "\n";
    return 2;
  }
  if (const auto unfinished = ledger->Unfinished(); !unfinished.empty()) {
    spdlog::info("{} unfinished request(s) in the ledger; clients resume them by id",
                 unfinished.size());
  }

  auto setup = core::MakeRouter(policy, 0);
  server::NodeTable nodes(
      core::MakePolicy(policy, 0),
      admission == "none" ? core::MakeNoAdmission() : core::MakeTidalAdmission(), split,
      setup && tide ? std::move(setup->lanes) : nullptr);
  nodes.AllowTide(tide);
  server::ChatPipeline pipeline(config, nodes, ledger.get());
  server::ChatServiceImpl chat(config, nodes, pipeline);
  server::RegistryServiceImpl registry(config, nodes);
  server::MonitorServiceImpl monitor(config, nodes);

  // Every service is a callback service, so the server keeps no synchronous request threads.
  proto::ReflectionService reflection({v1::ChatService::service_full_name(),
                                       v1::RegistryService::service_full_name(),
                                       v1::MonitorService::service_full_name()});
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  // Chat clients need no certificate; workers do, which Registry checks per call.
  builder.AddListeningPort(grpc_address->spec(),
                           tls::ServerCredentials(config.tls, tls::ClientCerts::kVerifyIf),
                           &grpc_port);
  // Bounded like the HTTP body: the largest valid request and some room for its framing.
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_prompt_bytes) * 2 + (64 << 10));
  builder.RegisterService(&chat);
  builder.RegisterService(&registry);
  builder.RegisterService(&monitor);
  builder.RegisterService(&reflection);
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

  std::string grpc_bound;
  try {
    grpc_bound = grpc_address->Bound(grpc_port);
  } catch (const std::exception& e) {
    std::cerr << "tidelane-router: " << e.what() << "\n";
    http.Stop();
    grpc_server->Shutdown();
    return 1;
  }
  // The supervisor and tests wait for this exact line on stdout.
  std::printf("tidelane-router ready grpc=%s http=%s\n", grpc_bound.c_str(), http_bound->c_str());
  std::fflush(stdout);
  spdlog::info("router serving gRPC on {}, HTTP on {}, policy {}", grpc_bound, *http_bound, policy);

  int signal = 0;
  sigwait(&signals, &signal);
  spdlog::info("signal {}: shutting down", signal);
  monitor.Stop();
  nodes.Shutdown();
  pipeline.Shutdown();
  http.Stop();
  registry.Stop();  // the workers' streams, which would otherwise hold the shutdown's grace
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
