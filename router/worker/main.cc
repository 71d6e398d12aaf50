// tidelane-worker: runs an engine, serves WorkerService on loopback and joins a router.
#include <grpcpp/server_builder.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "router/core/node_profile.h"
#include "router/engine/backend.h"
#include "router/proto/auth.h"
#include "router/proto/listen_address.h"
#include "router/proto/reflection_service.h"
#include "router/proto/runtime.h"
#include "router/proto/tls.h"
#include "router/receipt/receipt.h"
#include "router/worker/gguf_engine.h"
#include "router/worker/hardware_probe.h"
#include "router/worker/registry_client.h"
#include "router/worker/synthetic_engine.h"
#include "router/worker/worker_service.h"

namespace {

using namespace tidelane;

v1::Tier ToProto(core::Tier t) {
  switch (t) {
    case core::Tier::kHigh:
      return v1::TIER_HIGH;
    case core::Tier::kMid:
      return v1::TIER_MID;
    case core::Tier::kLow:
      return v1::TIER_LOW;
  }
  return v1::TIER_UNSPECIFIED;
}

// Where a worker keeps its identity unless told otherwise: one key per user and machine,
// shared by that user's workers (an operator vouches for a machine, not for each process).
std::string DefaultIdentityFile() {
  if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state) {
    return std::string(state) + "/tidelane/worker.key";
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return std::string(home) + "/.local/state/tidelane/worker.key";
  }
  return {};
}

}  // namespace

namespace {

int Run(int argc, char** argv) {
  tidelane::proto::UseReleaseLocking();
  CLI::App cli{"tidelane-worker: runs inference for a Tidelane router"};
  std::string router = "127.0.0.1:7443";
  std::string token_file;
  std::string engine_kind = "synthetic";
  std::string model;
  std::string backend = "cpu";
  std::string profile_name = "mid";
  std::string name;
  std::string listen = "127.0.0.1:0";
  double time_scale = 1.0;
  double drain_timeout_s = 30;
  cli.add_option("--router", router, "Router's gRPC address, HOST:PORT")->capture_default_str();
  cli.add_option("--auth-token-file", token_file,
                 "File holding the bearer token shared with the router (mode 0600)")
      ->required();
  cli.add_option("--engine", engine_kind, "Engine: synthetic (built in) or gguf (needs --model)")
      ->check(CLI::IsMember({"synthetic", "gguf"}))
      ->capture_default_str();
  cli.add_option("--model", model, "GGUF model file, for --engine gguf")->check(CLI::ExistingFile);
  int threads = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  std::uint32_t max_batch = 16;
  cli.add_option("--threads", threads, "CPU threads for the gguf engine")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cli.add_option("--max-batch", max_batch, "Sequences the gguf engine decodes together")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cli.add_option("--backend", backend,
                 "Where the gguf engine's weight products run: cpu, or cuda (an NVIDIA GPU; "
                 "built in here: " +
                     tidelane::engine::AvailableBackends() + ")")
      ->capture_default_str();
  std::string kv_type = "f16";
  cli.add_option("--kv-type", kv_type, "KV cache element type of the gguf engine: f16 or f32")
      ->check(CLI::IsMember({"f32", "f16"}))
      ->capture_default_str();
  bool map_weights = false;
  cli.add_flag("--mmap", map_weights,
               "gguf engine: map the model file instead of reading it into 2 MiB pages (a quicker "
               "start, the page cache's copy shared between processes; decoding is slower). A "
               "model too large to read in is mapped anyway");
  cli.add_option("--profile", profile_name,
                 "Node class whose speed the synthetic engine models: high, mid or low")
      ->check(CLI::IsMember({"high", "mid", "low"}))
      ->capture_default_str();
  cli.add_option("--name", name, "Node name shown by the router and monitor (default: HOST-PID)");
  std::string lane = "mixed";
  cli.add_option("--lane", lane,
                 "Lane this node serves in: mixed (whole requests), prefill (prompts, handing "
                 "the KV cache on) or decode (answers from an imported KV cache)")
      ->check(CLI::IsMember({"mixed", "prefill", "decode"}))
      ->capture_default_str();
  cli.add_option("--listen", listen,
                 "Address for this worker's WorkerService: HOST:PORT (port 0 picks a free one) or "
                 "unix:PATH, a socket only this user can open (for a router on this machine)")
      ->capture_default_str();
  cli.add_option("--time-scale", time_scale,
                 "Multiplies the synthetic engine's modelled delays (0 = no delay)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cli.add_option(
         "--drain-timeout", drain_timeout_s,
         "On SIGTERM, seconds to finish running requests (taking no new ones) before exiting")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  std::string identity_file = DefaultIdentityFile();
  bool identity_stdin = false;
  auto* identity_file_opt =
      cli.add_option("--identity-file", identity_file,
                     "Ed25519 key that signs this worker's receipts (mode 0600; created when "
                     "absent)")
          ->capture_default_str();
  cli.add_flag("--identity-stdin", identity_stdin,
               "Read the key from the first line of stdin instead of a file (the desktop app "
               "passes its keychain-held key this way)")
      ->excludes(identity_file_opt);
  tls::Files tls_files;
  cli.add_option("--tls-cert", tls_files.cert,
                 "PEM certificate chain: serve over TLS and present it to the router (mutual TLS)");
  cli.add_option("--tls-key", tls_files.key,
                 "PEM private key of --tls-cert (not readable by others)");
  cli.add_option("--tls-ca", tls_files.ca,
                 "PEM CA bundle: verify the router against it, and accept calls only from a "
                 "peer with a certificate it signed");
  CLI11_PARSE(cli, argc, argv);

  spdlog::set_default_logger(spdlog::stderr_color_mt("worker"));

  // A backend this build lacks fails before anything else; one the machine cannot run (no GPU)
  // fails when the model loads, with the backend's reason.
  {
    const std::string available = tidelane::engine::AvailableBackends();
    bool known = false;
    for (std::size_t at = 0; at <= available.size();) {
      const std::size_t end = std::min(available.find(", ", at), available.size());
      known = known || available.substr(at, end - at) == backend;
      at = end + 2;
    }
    if (!known) {
      std::cerr << "tidelane-worker: unknown --backend " << backend << " (available: " << available
                << ")\n";
      return 2;
    }
    if (backend != "cpu" && engine_kind != "gguf") {
      std::cerr << "tidelane-worker: --backend " << backend << " needs --engine gguf\n";
      return 2;
    }
  }

  std::string token;
  std::shared_ptr<grpc::ServerCredentials> server_credentials;
  std::shared_ptr<grpc::ChannelCredentials> router_credentials;
  try {
    token = auth::ReadTokenFile(token_file);
    server_credentials = tls::ServerCredentials(tls_files, tls::ClientCerts::kRequire);
    router_credentials = tls::ChannelCredentials(tls_files);
  } catch (const std::exception& e) {
    std::cerr << "tidelane-worker: " << e.what() << "\n";
    return 2;
  }
  // Before the model loads: a socket path in use or out of reach fails at once.
  std::unique_ptr<proto::ListenAddress> listen_address;
  try {
    listen_address = std::make_unique<proto::ListenAddress>(
        listen, tls_files.serves_tls() ? proto::ListenAddress::Security::kTls
                                       : proto::ListenAddress::Security::kPlaintext);
  } catch (const std::exception& e) {
    std::cerr << "tidelane-worker: " << e.what() << "\n";
    return 2;
  }
  // Before the model loads (which may take long): a bad identity fails at once.
  worker::ReceiptSigner signer;
  try {
    if (identity_stdin) {
      signer.identity = receipt::ReadIdentity(std::cin, "--identity-stdin");
    } else if (identity_file.empty()) {
      std::cerr << "tidelane-worker: no HOME or XDG_STATE_HOME to keep an identity in; pass "
                   "--identity-file PATH\n";
      return 2;
    } else {
      signer.identity = receipt::LoadOrCreateIdentity(identity_file);
    }
  } catch (const std::exception& e) {
    std::cerr << "tidelane-worker: " << e.what() << "\n";
    return 2;
  }
  if (!signer.identity.secret_key.locked()) {
    // Not an error: RLIMIT_MEMLOCK is often small. The key is still kept out of core dumps
    // and wiped when freed; it may be swapped out.
    spdlog::debug(
        "could not lock the worker's secret key in memory (RLIMIT_MEMLOCK); it may "
        "be written to swap");
  }
  const auto profile = core::FindProfile(profile_name);
  std::unique_ptr<worker::Engine> engine;
  std::uint32_t context_length = 0;
  double measured_prefill_tok_s = 0, measured_decode_ms = 0;
  std::string backend_used = "none";  // the synthetic engine runs no weight products
  if (engine_kind == "gguf") {
    if (model.empty()) {
      std::cerr << "tidelane-worker: --engine gguf needs --model FILE.gguf\n";
      return 2;
    }
    auto gguf = worker::GgufEngine::Load(
        model, {.threads = threads,
                .max_batch = max_batch,
                .kv_type = *tidelane::engine::ParseKvType(kv_type),
                .backend = backend,
                .weights = map_weights ? tidelane::engine::Placement::kMapped
                                       : tidelane::engine::Placement::kHugePages});
    if (!gguf) {
      std::cerr << "tidelane-worker: " << gguf.error() << "\n";
      return 2;
    }
    backend_used = std::string((*gguf)->Backend());
    if ((*gguf)->Weights() == tidelane::engine::Placement::kHugePages) {
      spdlog::info("model weights read into 2 MiB pages");
    } else {
      spdlog::info("model weights mapped from the file{}",
                   map_weights ? " (--mmap)" : " (too little free memory to read them in)");
    }
    context_length = (*gguf)->ContextLength();
    measured_prefill_tok_s = (*gguf)->prefill_tokens_per_s();
    measured_decode_ms = (*gguf)->decode_ms_per_token();
    engine = std::move(gguf).value();
  } else {
    engine = std::make_unique<worker::SyntheticEngine>(*profile, time_scale);
    context_length = worker::SyntheticEngine::kContextLength;
  }
  if (name.empty()) name = "worker-" + std::to_string(::getpid());

  signer.worker_name = name;
  signer.model_kind = std::string(engine->Kind());
  signer.model_id = engine->Model();
  if (engine_kind == "gguf") {
    // Hashed once at load: receipts name the exact weights, not just a file name.
    try {
      signer.model_sha256 = receipt::Sha256File(model);
    } catch (const std::exception& e) {
      std::cerr << "tidelane-worker: " << e.what() << "\n";
      return 2;
    }
  } else {
    // No weights: the profile the synthetic engine imitates is what determines its answers'
    // timing, and its text comes from the conversation alone; the hash names that profile.
    signer.model_sha256 = receipt::Sha256Hex(
        "tidelane-synthetic profile=" + std::string(profile->name) +
        " prefill_tokens_per_s=" + std::to_string(profile->prefill_tokens_per_s) +
        " decode_ms_per_token=" + std::to_string(profile->decode_ms_per_token) +
        " max_batch=" + std::to_string(profile->max_batch));
  }
  spdlog::info("signing receipts as {} (model {} sha256 {})", signer.identity.PublicKeyHex(),
               signer.model_id, signer.model_sha256);

  // Signals are taken synchronously by sigwait below, so block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  worker::WorkerServiceImpl service(*engine, token, std::move(signer));
  proto::ReflectionService reflection({v1::WorkerService::service_full_name()});
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen_address->spec(), server_credentials, &port);
  builder.RegisterService(&service);
  builder.RegisterService(&reflection);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "tidelane-worker: cannot listen on " << listen << "\n";
    return 1;
  }
  std::string address;
  try {
    address = listen_address->Bound(port);
  } catch (const std::exception& e) {
    std::cerr << "tidelane-worker: " << e.what() << "\n";
    server->Shutdown();
    return 1;
  }

  v1::Register registration;
  registration.set_name(name);
  registration.set_address(address);
  registration.set_tier(ToProto(profile->tier));
  registration.set_engine(std::string(engine->Kind()));
  registration.set_model(engine->Model());
  registration.set_max_batch(engine->MaxBatch());
  registration.set_context_length(context_length);
  registration.set_lane(lane == "prefill"  ? v1::LANE_PREFILL
                        : lane == "decode" ? v1::LANE_DECODE
                                           : v1::LANE_MIXED);
  registration.set_kv_handoff(engine->SupportsHandoff());
  // A real engine reports what it measured; the synthetic one, the profile it imitates.
  registration.set_prefill_tokens_per_s(measured_prefill_tok_s > 0 ? measured_prefill_tok_s
                                                                   : profile->prefill_tokens_per_s);
  registration.set_decode_ms_per_token(measured_decode_ms > 0 ? measured_decode_ms
                                                              : profile->decode_ms_per_token);

  std::atomic<bool> draining{false};
  worker::HardwareProbe hardware;
  spdlog::info("GPUs: {}", hardware.GpuStatus());
  // What the router's telemetry will carry for each GPU, once at start (the device checks and
  // operators read it here; the router shows it in the monitor).
  const v1::HardwareInfo first_sample = hardware.Sample();
  for (const auto& gpu : first_sample.gpus()) {
    spdlog::info("GPU {}: {:.0f}% busy, memory {:.1f} of {:.1f} GiB, {:.0f} C, {:.0f} W",
                 gpu.name(), gpu.utilisation() * 100, gpu.memory_used_bytes() / 1073741824.0,
                 gpu.memory_total_bytes() / 1073741824.0, gpu.temperature_c(), gpu.power_w());
  }
  std::uint64_t tokens_before = 0;
  auto sampled_at = std::chrono::steady_clock::now();
  const auto telemetry = [&] {
    v1::Telemetry t;
    *t.mutable_hardware() = hardware.Sample();
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - sampled_at).count();
    const std::uint64_t tokens = service.TokensTotal();
    if (seconds > 0) t.set_tokens_per_s((tokens - tokens_before) / seconds);
    tokens_before = tokens;
    sampled_at = now;
    const double occupancy = static_cast<double>(engine->Active()) / engine->MaxBatch();
    t.set_active_requests(engine->Active());
    t.set_served_total(service.ServedTotal());
    t.mutable_saturation()->set_batch_occupancy(occupancy);
    t.mutable_saturation()->set_compute(occupancy);
    t.set_draining(draining.load());
    return t;
  };
  bool announced = false;
  const auto on_welcome = [&](const v1::Welcome&) {
    if (std::exchange(announced, true)) return;
    // The supervisor and tests wait for this exact line on stdout.
    std::printf("tidelane-worker ready name=%s listen=%s\n", name.c_str(), address.c_str());
    std::fflush(stdout);
  };
  worker::RegistryClient registry(router, token, registration, telemetry, on_welcome,
                                  router_credentials);
  registry.Start();
  spdlog::info("worker {} serving on {} (engine {}, backend {}, profile {}), joining router {}",
               name, address, engine->Kind(), backend_used, profile->name, router);

  int signal = 0;
  sigwait(&signals, &signal);
  // Drain: tell the router to send nothing new, let running requests finish (bounded), then go.
  draining = true;
  spdlog::info("signal {}: draining {} running request(s), at most {} s", signal, engine->Active(),
               drain_timeout_s);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(drain_timeout_s));
  while (engine->Active() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  registry.Stop();
  // Whatever is still running past the drain ends now, so the calls below return promptly.
  engine->Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
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
