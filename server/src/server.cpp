#include "eftd/server/server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "acquirer_gateway.hpp"
#include "admin.hpp"
#include "backoffice_http.hpp"
#include "byte_stream.hpp"
#include "connection.hpp"
#include "context.hpp"
#include "eftd/core/tls_channel.hpp"
#include "engine.hpp"
#include "ha.hpp"
#include "key_module.hpp"
#include "metrics_http.hpp"
#include "notifier.hpp"
#include "pad_session.hpp"
#include "pos_session.hpp"
#include "reload.hpp"
#include "retention.hpp"
#include "settlement.hpp"
#include "shared_files.hpp"

namespace eftd::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// Binds a listener; a port already in use is a clear start-up error, not a crash.
result<tcp::acceptor> bind(asio::io_context& io, const config::listener& l, std::string_view what) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(l.address, ec);
  if (ec)
    return make_error("server.bad_address",
                      fmt::format("listen.{}.address '{}': {}", what, l.address, ec.message()));
  tcp::acceptor a(io);
  tcp::endpoint ep(addr, l.port);
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return make_error("server.listen_failed", fmt::format("cannot listen for {} on {}:{}: {}", what,
                                                          l.address, l.port, ec.message()));
  return a;
}

// How many tills the open-file limit lets in (connection.hpp's descriptor_budget), and a
// warning when the listeners' max_connections promise more than that.
void report_descriptor_budget(const config::server_config& cfg) {
  const auto budget = descriptor_budget::of_process();
  spdlog::info(
      "open-file limit {}: up to {} POS and pad connections together ({} kept for the journal, "
      "acquirer links and operators)",
      budget->limit(), budget->max(), budget->limit() - budget->max());
  const std::uint64_t promised = std::uint64_t{cfg.pos.max_connections} + cfg.pad.max_connections;
  if (promised > budget->max())
    spdlog::warn(
        "listen.pos.max_connections + listen.pad.max_connections = {} but the open-file limit {} "
        "leaves {} for peers: about {} tills can connect (raise LimitNOFILE)",
        promised, budget->limit(), budget->max(), budget->max() / 2);
}

// Puts the pair's key store in place of this node's file where they differ, and logs what it
// did (shared_files.hpp). A copy that does not open here leaves this node's own file.
void follow_shared_keystore(server_context& ctx) {
  auto followed = ctx.shared->follow_keystore();
  if (!followed)
    spdlog::error("ha: {}", followed.err().message);
  else if (!followed->empty())
    spdlog::warn("ha: {}", *followed);
}

// A standby about to serve: the key store and registry the old active shared last are put in
// force (shared_files.hpp).
void prepare_shared_files(server_context& ctx) {
  follow_shared_keystore(ctx);
  if (auto reopened = ctx.shared->reopen_keystore_if_changed(); !reopened)
    spdlog::error("ha: the key store stays as it was: {}", reopened.err().message);
  std::vector<std::string> notes;
  ctx.install_config(ctx.shared->refresh(notes));
  for (const auto& n : notes) spdlog::warn("ha: registry: {}", n);
}

std::int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// run_once's answer when the node must start over (a fenced active comes back as standby;
// a standby installs a snapshot): run() loops on it, so no supervisor is needed for that.
constexpr int restart_run = -75;

// `in_force` is the configuration to start with; on return it is the one in force at the end
// (a reload may have replaced it), so that a restarted run serves what the operator installed.
int run_once(config::server_config& in_force, const run_options& options);

int run(const config::server_config& cfg, const run_options& options) {
  config::server_config in_force = cfg;
  for (;;) {
    const int rc = run_once(in_force, options);
    if (rc != restart_run) return rc;
    spdlog::warn("eftd '{}' starting again", in_force.node_name);
  }
}

int run_once(config::server_config& in_force, const run_options& options) {
  asio::io_context io(static_cast<int>(options.threads));
  server_context ctx{io, in_force};
  // The start-up code below reads the configuration this run began with (ctx keeps it alive
  // after a reload; what it sets up here cannot change at run time anyway).
  const config::server_config& cfg = ctx.cfg();
  ctx.clock.now_ms = system_now_ms;
  // Hands the configuration in force back to run() on every way out (start-up failures too).
  struct hand_back {
    server_context& ctx;
    config::server_config& out;
    ~hand_back() { out = ctx.shared ? ctx.shared->file_config() : ctx.cfg(); }
  } keep_in_force{ctx, in_force};
  int exit_code = 0;

  auto fail = [](const error& e) {
    spdlog::critical("start-up failed: {}", e.message);
    std::fprintf(stderr, "eftd: %s\n", e.message.c_str());
    return 1;
  };

  if (!cfg.bin_table.empty()) {
    auto bins = eftd::bin_table::load(cfg.bin_table);
    if (!bins) return fail(make_error(bins.err().code, "cards.bin_table: " + bins.err().message));
    ctx.bins.emplace(std::move(*bins));
  }
  if (cfg.emv.enabled) {
    auto capks = emv::capk_table::load(cfg.emv.capk_file);
    if (!capks) return fail(make_error(capks.err().code, "emv.capk_file: " + capks.err().message));
    spdlog::info("EMV kernel on: {} CA public key(s) from {}", capks->size(), cfg.emv.capk_file.string());
    ctx.capks.emplace(std::move(*capks));
  }
  std::error_code fec;
  if (cfg.journal_cfg.path.has_parent_path())
    std::filesystem::create_directories(cfg.journal_cfg.path.parent_path(), fec);
  auto keys = journal::load_or_create_keys(cfg.journal_cfg.key_file);
  if (!keys) return fail(make_error(keys.err().code, "journal.key_file: " + keys.err().message));
  ctx.keys = std::move(*keys);
  // Outcome notifications ([[notify]], notifier.hpp): the writer fills the outbox in the
  // transaction of each final outcome (a row per endpoint that takes the order's merchant) and
  // wakes the notifiers after the commit. The hook is set before the notifiers exist, so it
  // goes through a holder filled in below.
  auto notify_hook = std::make_shared<std::vector<std::shared_ptr<notifier>>>();
  auto notify_hook_mu = std::make_shared<std::mutex>();
  journal::writer_options wopts;
  wopts.max_batch = cfg.journal_cfg.group_commit_max;
  wopts.notifications.enabled = !cfg.notify.empty();
  for (std::size_t i = 0; i < cfg.notify.size(); ++i)
    wopts.notifications.endpoints.push_back({cfg.notify[i].name, cfg.notify[i].merchants, i == 0});
  wopts.on_notifications = [notify_hook, notify_hook_mu] {
    std::vector<std::shared_ptr<notifier>> all;
    {
      std::lock_guard lk(*notify_hook_mu);
      all = *notify_hook;
    }
    // Which endpoint got rows is not known here; a notifier with nothing new just looks again.
    for (auto& n : all) n->wake();
  };
  if (cfg.ha.enabled) {
    // A snapshot the active sent during the last run replaces this journal before it opens.
    auto seeded = install_seed(cfg.journal_cfg.path);
    if (!seeded) return fail(seeded.err());
    if (!seeded->empty()) spdlog::warn("ha: {}", *seeded);
    auto node = make_ha_node(ctx);
    if (!node) return fail(node.err());
    ctx.ha = std::move(*node);
    wopts.replication = ctx.ha->journal_hooks();
  }
  auto writer = journal::writer::open(cfg.journal_cfg.path, wopts);
  if (!writer) return fail(make_error(writer.err().code, "journal.path: " + writer.err().message));
  ctx.journal = std::move(*writer);
  // The writer has migrated the schema, so the read connection can open now.
  auto reader = journal::reader::open(cfg.journal_cfg.path);
  if (!reader) return fail(make_error(reader.err().code, "journal.path: " + reader.err().message));
  ctx.reader.emplace(std::move(*reader));

  // The key store and registry a pair shares (shared_files.hpp): an HA node starts from the
  // newest shared copies in its journal, laid over its own files.
  ctx.shared = std::make_shared<shared_files>(ctx, cfg);
  if (ctx.ha) {
    std::vector<std::string> notes;
    ctx.install_config(ctx.shared->in_force(cfg, /*reload=*/false, notes));
    for (const auto& n : notes) spdlog::warn("ha: registry: {}", n);
    follow_shared_keystore(ctx);
  }
  {
    const auto sha = key_store_sha256(cfg.keys.store);
    auto km = key_module::open(cfg);
    if (!km) return fail(km.err());
    if ((*km)->enabled())
      spdlog::info("key store {} opened: {} DUKPT BDK mapping(s)", cfg.keys.store.string(),
                   cfg.keys.dukpt.size());
    else if (cfg.keys.require_p2pe)
      spdlog::warn(
          "no key store ([keys] store): pads cannot send encrypted card data and clear card data is "
          "refused (keys.require_p2pe), so every card read will fail");
    ctx.install_key_store(std::move(*km));
    ctx.shared->opened_keystore(sha);
  }

  if (cfg.pos.tls.enabled()) {
    auto tls = make_server_tls(cfg.pos.tls);
    if (!tls) return fail(make_error(tls.err().code, "listen.pos.tls: " + tls.err().message));
    ctx.pos_tls = std::move(*tls);
  }
  if (cfg.pad.tls.enabled()) {
    auto tls = tls_context::server(cfg.pad.tls);
    if (!tls) return fail(make_error(tls.err().code, "listen.pad.tls: " + tls.err().message));
    ctx.pad_tls = std::move(*tls);
  }
  report_descriptor_budget(cfg);
  auto pos_acc = bind(io, cfg.pos, "pos");
  if (!pos_acc) return fail(pos_acc.err());
  auto pad_acc = bind(io, cfg.pad, "pad");
  if (!pad_acc) return fail(pad_acc.err());
  std::optional<tcp::acceptor> metrics_acc;
  if (cfg.metrics) {
    auto m = bind(io, *cfg.metrics, "metrics");
    if (!m) return fail(m.err());
    metrics_acc.emplace(std::move(*m));
  }

  // Back office: its own thread, reader and users-table connection (after the writer migrated).
  {
    auto bo = backoffice::service::open(ctx);
    if (!bo) return fail(make_error(bo.err().code, "back office: " + bo.err().message));
    ctx.backoffice = std::move(*bo);
  }

  std::vector<std::shared_ptr<notifier>> notifiers;
  for (std::size_t i = 0; i < cfg.notify.size(); ++i) {
    auto n = notifier::open(ctx, cfg.notify[i], /*legacy_rows=*/i == 0);
    if (!n) return fail(make_error(n.err().code, fmt::format("notify[{}]: {}", i, n.err().message)));
    notifiers.push_back(std::move(*n));
  }
  if (!notifiers.empty()) {
    std::lock_guard lk(*notify_hook_mu);
    *notify_hook = notifiers;
  }

  // Dialect and framing names are checked here: core's config parser does not link acquirers/.
  if (auto st = check_acquirers(cfg); !st) return fail(st.err());
  create_links(ctx);

  auto on_listener_end = [](std::exception_ptr e) {
    if (e) spdlog::error("listener stopped by an exception");
  };
  asio::co_spawn(io, pos_listener(*pos_acc, ctx), on_listener_end);
  asio::co_spawn(io, pad_listener(*pad_acc, ctx), on_listener_end);
  if (metrics_acc) asio::co_spawn(io, metrics_listener(*metrics_acc, ctx), on_listener_end);

  // End of day (settlement.hpp) and the local admin socket that asks for it (admin.hpp).
  settlement_service settlement(ctx);
  // Daily journal purge ([journal] retention_days, retention.hpp).
  retention_service retention(ctx);
  // `eftctl reload` and SIGHUP (reload.hpp).
  config_reloader reloader(ctx, options.config_file, options.overrides);
  auto admin = admin_listener::open(ctx, settlement, reloader);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  // SIGHUP reloads the configuration (like `eftctl reload`); its own set, armed again after each.
  asio::signal_set hangups(io, SIGHUP);
  bool shut = false;
  auto shutdown = [&] {
    if (shut) return;
    shut = true;
    signals.cancel();
    hangups.cancel();
    if (ctx.ha) ctx.ha->stop();
    boost::system::error_code ignore;
    pos_acc->close(ignore);
    pad_acc->close(ignore);
    if (admin) admin->stop();
    settlement.stop();
    retention.stop();
    if (metrics_acc) metrics_acc->close(ignore);
    if (ctx.backoffice) ctx.backoffice->stop();
    for (auto& n : notifiers) n->stop();
    close_links(ctx);
    io.stop();
  };
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", sig);
    shutdown();
  });
  // One reload at a time from signals: the next SIGHUP is awaited once this one is done (the
  // reloader also serialises against the admin socket). After shutdown() the wait is cancelled
  // or never completes (the io_context stops).
  std::function<void()> await_hangup = [&] {
    hangups.async_wait([&](boost::system::error_code ec, int) {
      if (ec) return;
      asio::co_spawn(io, reload_on_signal(ctx, reloader), [&](std::exception_ptr e) {
        if (e) spdlog::error("config reload after SIGHUP ended by an exception");
        await_hangup();
      });
    });
  };
  await_hangup();

  const auto pos_port = pos_acc->local_endpoint().port();
  const auto pad_port = pad_acc->local_endpoint().port();
  spdlog::info("eftd '{}' listening: POS on {}:{}{}, pads on {}:{}{}, journal {}", cfg.node_name,
               cfg.pos.address, pos_port, ctx.pos_tls ? " (TLS, client certificates)" : " (plaintext)",
               cfg.pad.address, pad_port, ctx.pad_tls ? " (TLS 1.3, device certificates)" : " (plaintext)",
               cfg.journal_cfg.path.string());
  // What only the active node runs. A single node is active from the start; an HA node once
  // the witness says so (at once, or at its promotion).
  // In-doubt recovery works on what was left before this node served anything: a single node
  // takes stock here, before its listeners run; an HA node right before it starts serving.
  recovery_plan plan;
  bool planned = false;
  auto become_active = [&] {
    if (!planned) plan = plan_recovery(ctx);
    start_recovery(ctx, std::move(plan));
    // An HA active shares its key store and registry with the standby where they changed.
    ctx.shared->publish();
    // Resumes what the outbox holds as pending (after a restart too).
    for (auto& n : notifiers) n->start();
    ctx.backoffice->start();
    // Catch-up close of earlier business dates ([settlement] close_on_start) and the daily cut-over.
    settlement.start();
    retention.start();
  };
  if (admin) admin->start();
  if (ctx.ha) {
    ha_hooks hooks;
    hooks.before_serving = [&ctx, &plan, &planned] {
      // What the old active shared last: its key store and its registry.
      prepare_shared_files(ctx);
      plan = plan_recovery(ctx);
      planned = true;
    };
    hooks.become_active = [&io, &become_active] { asio::post(io, [&become_active] { become_active(); }); };
    hooks.restart = [&io, &shutdown, &exit_code](std::string reason) {
      asio::post(io, [&shutdown, &exit_code, reason] {
        spdlog::warn("ha: restarting: {}", reason);
        exit_code = restart_run;
        shutdown();
      });
    };
    ctx.ha->start(std::move(hooks));
  } else {
    become_active();
  }
  const int metrics_port = metrics_acc ? metrics_acc->local_endpoint().port() : 0;
  if (metrics_acc) spdlog::info("metrics on http://{}:{}/metrics", cfg.metrics->address, metrics_port);
  if (options.print_ready) {
    const int backoffice_port = ctx.backoffice->port();
    std::cout << fmt::format("READY {{\"pos\":{},\"pad\":{}{}{}}}", pos_port, pad_port,
                             metrics_acc ? fmt::format(",\"metrics\":{}", metrics_port) : std::string(),
                             backoffice_port ? fmt::format(",\"backoffice\":{}", backoffice_port) : std::string())
              << std::endl;
  }

  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < options.threads; ++i) threads.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  if (admin) admin->stop();
  ctx.backoffice->stop();

  // Everything already submitted to the journal is made durable before exit.
  ctx.journal->close();
  spdlog::info("eftd stopped");
  return exit_code;
}

}  // namespace eftd::server
