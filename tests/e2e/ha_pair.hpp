// The hot-standby pair for end-to-end tests (server/HA.md, issue 8): a witness, two eftd nodes
// with their own journals and admin sockets, the acquirer simulator of one `installation`, and
// waits on roles. Used by the failover and chaos tests.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>

#include "e2e_util.hpp"
#include "eftd/journal/reader.hpp"
#include "free_port.hpp"

namespace eftd::test::ha {
using namespace std::chrono_literals;

inline std::string demo_config_text() {
  std::ifstream in(source_path("etc/demo.toml"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string rel = "bin_table = \"bin-ranges.csv\"";
  if (auto at = text.find(rel); at != std::string::npos)
    text.replace(at, rel.size(), "bin_table = \"" + source_path("etc/bin-ranges.csv") + "\"");
  return text;
}

// eft-loadgen's [[pads]] and [[tills]] tables for `tills` simulated tills.
inline std::string loadgen_config(int tills) {
  process p(bin_path("eft-loadgen"), {"--print-config", std::to_string(tills)});
  std::string text;
  while (auto line = p.read_line(30s)) text += *line + "\n";
  REQUIRE(p.wait_exit(30s).value_or(-1) == 0);
  return text;
}

constexpr int lease_ms = 1000;
constexpr int promote_after_ms = 2500;

struct node {
  std::string id, dir;
  int pos = 0, pad = 0, repl = 0;
  int metrics = 0;  // GET /metrics port when ha_pair::metrics is set
  std::unique_ptr<process> proc;
  std::string db() const { return dir + "/eftd.db"; }
  std::string socket() const { return dir + "/admin.sock"; }
  std::string key_store() const { return dir + "/keys.store"; }
  std::string config() const { return dir + "/eftd.toml"; }
};

// The pair: node 0 ("a") starts active, node 1 ("b") standby.
struct ha_pair {
  installation inst;
  std::unique_ptr<process> witness;
  int witness_port = 0;
  std::array<node, 2> nodes;
  std::string mode = "sync";
  // Each node serves GET /metrics on a port of its own (node::metrics).
  bool metrics = false;
  // More [ha] keys for both nodes ("log_keep = 4\n").
  std::string ha_extra;
  // More configuration for both nodes, e.g. eft-loadgen's [[pads]] and [[tills]] tables.
  std::string extra_toml;
  // Split-brain tests route a node's links through a cut_proxy: the port node i uses to reach
  // its peer's replication listener, and the witness (0: direct).
  std::array<int, 2> peer_repl_via{0, 0};
  std::array<int, 2> witness_via{0, 0};

  explicit ha_pair(const std::string& tag) : inst(tag) {
    nodes[0].id = "a";
    nodes[1].id = "b";
    for (auto& n : nodes) {
      n.dir = inst.dir + "/" + n.id;
      std::filesystem::create_directories(n.dir);
      n.pos = free_port();
      n.pad = free_port();
      n.repl = free_port();
    }
  }

  // More witness options (health thresholds).
  std::vector<std::string> witness_extra;

  void start_witness() {
    std::vector<std::string> args{"witness", "--listen", "127.0.0.1:0", "--state", inst.dir + "/witness.json",
                                  "--nodes", "a,b", "--initial-active", "a", "--lease-ms", std::to_string(lease_ms),
                                  "--promote-after-ms", std::to_string(promote_after_ms)};
    args.insert(args.end(), witness_extra.begin(), witness_extra.end());
    witness = std::make_unique<process>(bin_path("eftd"), args, inst.dir + "/witness.log");
    auto ready = witness->wait_ready();
    REQUIRE(ready.has_value());
    witness_port = eftd::test::json_port(*ready, "witness");
  }

  std::string ha_toml(int i) const {
    const auto& me = nodes[static_cast<std::size_t>(i)];
    const auto& peer = nodes[static_cast<std::size_t>(1 - i)];
    auto addr = [](int port) { return "\"127.0.0.1:" + std::to_string(port) + "\""; };
    const auto si = static_cast<std::size_t>(i);
    const int witness_at = witness_via[si] ? witness_via[si] : witness_port;
    const int peer_repl = peer_repl_via[si] ? peer_repl_via[si] : peer.repl;
    return "[ha]\nnode_id = \"" + me.id + "\"\npos_address = " + addr(me.pos) + "\npad_address = " + addr(me.pad) +
           "\nwitness = " + addr(witness_at) + "\nmode = \"" + mode + "\"\nlease_ms = " + std::to_string(lease_ms) +
           "\npromote_after_ms = " + std::to_string(promote_after_ms) +
           "\nheartbeat_ms = 200\nsync_timeout_ms = 1500\n" + ha_extra + "[ha.replication]\naddress = \"127.0.0.1\"\nport = " +
           std::to_string(me.repl) + "\n[ha.peer]\nid = \"" + peer.id + "\"\nreplication = " + addr(peer_repl) +
           "\npos_address = " + addr(peer.pos) + "\npad_address = " + addr(peer.pad) + "\n";
  }

  std::string master_key() const { return inst.dir + "/keys/keys.master"; }

  // Writes the node's configuration file (the demo's, extra_toml, its [ha] tables).
  void write_config(int i) {
    std::ofstream(nodes[static_cast<std::size_t>(i)].config()) << demo_config_text() << "\n" << extra_toml << "\n"
                                                                << ha_toml(i);
  }

  void start_node(int i) {
    auto& n = nodes[static_cast<std::size_t>(i)];
    const std::string config = n.config();
    write_config(i);
    std::vector<std::string> args{"-c", config, "--set", "listen.pos.port=" + std::to_string(n.pos), "--set",
                                  "listen.pad.port=" + std::to_string(n.pad), "--set",
                                  "acquirers.sim.port=" + std::to_string(inst.acquirer_port), "--set",
                                  "journal.path=" + n.db(),
                                  // One journal key for the pair: both must read the stored PANs.
                                  "--set", "journal.key_file=" + inst.dir + "/journal.key", "--set",
                                  "admin.socket=" + n.socket(),
                                  // Pads hear from the active often, so a paused one is noticed.
                                  "--set", "pad_health.ping_interval_ms=500"};
    // Each node its own copy of the key store, one master key for the pair (HA.md, "Install"):
    // the active shares its store with the standby through the journal.
    if (!std::filesystem::exists(n.key_store())) std::filesystem::copy_file(inst.dir + "/keys/keys.store", n.key_store());
    for (auto& k : std::vector<std::string>{"--set", "keys.store=" + n.key_store(), "--set",
                                            "keys.master_key_file=" + master_key()})
      args.push_back(k);
    // A fixed port: a standby that installs a snapshot starts over in the same process and
    // binds its listeners again.
    if (metrics) {
      if (n.metrics == 0) n.metrics = free_port();
      args.push_back("--set");
      args.push_back("listen.metrics.port=" + std::to_string(n.metrics));
    }
    n.proc = std::make_unique<process>(bin_path("eftd"), args, n.dir + "/eftd.log");
    REQUIRE(n.proc->wait_ready().has_value());
  }

  // Node a as active and node b as its standby, each confirmed.
  void start_nodes() {
    start_node(0);
    start_node(1);
    REQUIRE(wait_role(0, "active", 20s));
    REQUIRE(wait_role(1, "standby", 20s));
  }
  // The witness, then both nodes.
  void start() {
    start_witness();
    start_nodes();
  }

  void kill_node(int i) {
    auto& n = nodes[static_cast<std::size_t>(i)];
    n.proc->signal(SIGKILL);
    n.proc->wait_exit(10s);
    n.proc.reset();
  }

  nlohmann::json status(int i) {
    process p(bin_path("eftctl"),
              {"status", "--socket", nodes[static_cast<std::size_t>(i)].socket(), "--json", "--timeout-ms", "2000"},
              inst.dir + "/eftctl.log");
    nlohmann::json j;
    while (auto line = p.read_line(5s)) {
      auto parsed = nlohmann::json::parse(*line, nullptr, false);
      if (!parsed.is_discarded()) j = parsed;
    }
    p.wait_exit(5s);
    return j;
  }

  // Waits for the node's log line of that role, then confirms it with `eftctl status`.
  bool wait_role(int i, const std::string& role, std::chrono::milliseconds limit) {
    const auto& n = nodes[static_cast<std::size_t>(i)];
    const std::string line = role == "active" ? "node '" + n.id + "' serving as active"
                                              : "node '" + n.id + "' is the standby";
    const auto deadline = std::chrono::steady_clock::now() + limit;
    // The node may log the line and then start over (a snapshot, a fence): after a mismatch,
    // wait for the next log line of any kind before asking again.
    if (!eftd::test::wait_for_text_in_file(n.dir + "/eftd.log", line, limit)) return false;
    while (std::chrono::steady_clock::now() < deadline) {
      auto s = status(i);
      if (s.contains("ha") && s["ha"].value("role", "") == role && (role != "active" || s["ha"].value("serving", false)))
        return true;
      const auto size = eftd::test::slurp(n.dir + "/eftd.log").size();
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      eftd::test::wait_for_file_growth(n.dir + "/eftd.log", size, std::min<std::chrono::milliseconds>(left, 1000ms));
    }
    return false;
  }

  // The pad knows both nodes (PROTOCOL.md section 5: it tries them in turn).
  void start_pad(const std::string& card) {
    inst.pad_port = nodes[0].pad;
    inst.start_pad("P01", "VP-0001", card,
                   {"--server", "127.0.0.1:" + std::to_string(nodes[1].pad), "--server-silence-ms", "2000",
                    "--handshake-timeout-ms", "2000"});
  }

  // Until the pad is served by node i (it moves by itself; a sale before that finds no pad).
  bool wait_pad_on(int i, std::chrono::milliseconds limit) {
    return eftd::test::wait_for_text_in_file(
        inst.dir + "/pad.log", "accepted by 127.0.0.1:" + std::to_string(nodes[static_cast<std::size_t>(i)].pad), limit);
  }

  eftd::test::pos_run pos(int i, std::vector<std::string> args) {
    inst.pos_port = nodes[static_cast<std::size_t>(i)].pos;
    return inst.pos("T01", std::move(args));
  }
};

inline std::optional<eftd::journal::order_view> order_in(const std::string& db, const std::string& order) {
  auto rd = eftd::journal::reader::open(db);
  if (!rd) return std::nullopt;
  auto rows = rd->find_orders_recent("T01", order, 0);
  if (!rows || rows->size() != 1) return std::nullopt;
  auto d = rd->order_detail(rows->front().order_id);
  if (!d || !d->has_value()) return std::nullopt;
  return std::move(**d);
}


}  // namespace eftd::test::ha
