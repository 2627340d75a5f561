// The PIN pad channel under TLS 1.3 end to end (R13): real eftd and eftpad processes with
// certificates from tools/pad-certs. A TLS pad sells; unknown device certificates, another
// pad's certificate, revoked pads, TLS 1.2 and plaintext pads are refused and logged; replayed
// frames and replayed TLS records inside an accepted session close it.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "e2e_util.hpp"
#include "eftd/core/tls_channel.hpp"

using namespace std::chrono_literals;
using namespace eftd::test;

namespace {

struct pad_certs {
  std::string dir;
  std::string ca() const { return dir + "/ca.pem"; }
  // eftpad's TLS options for the device certificate of `serial` (trusting `trust`'s CA).
  std::vector<std::string> args(const std::string& serial, const pad_certs& trust) const {
    return {"--tls-ca",   trust.ca(),
            "--tls-cert", dir + "/" + serial + ".pem",
            "--tls-key",  dir + "/" + serial + ".key"};
  }
  std::vector<std::string> args(const std::string& serial) const { return args(serial, *this); }
};

pad_certs make_certs(const std::string& dir, const std::string& serials) {
  const std::string cmd =
      source_path("tools/pad-certs") + " " + dir + " localhost " + serials + " >/dev/null";
  REQUIRE(std::system(cmd.c_str()) == 0);
  return {dir};
}

std::string pad_tls_config(const pad_certs& c) {
  return "[listen.pad.tls]\ncert_file = \"" + c.dir + "/server.pem\"\nkey_file = \"" + c.dir +
         "/server.key\"\nclient_ca_file = \"" + c.ca() + "\"\n";
}

// eftpad virtual with its log (stderr) on the captured stdout, so a test waits for the line
// that reports the outcome instead of waiting for a READY that must not come.
std::unique_ptr<process> spawn_pad(const installation& inst, const std::string& pad_id,
                                   const std::string& serial, const std::vector<std::string>& extra) {
  std::vector<std::string> args{"-c",
                                "exec \"$0\" \"$@\" 2>&1",
                                bin_path("eftpad"),
                                "virtual",
                                "--server",
                                "127.0.0.1:" + std::to_string(inst.pad_port),
                                "--pad-id",
                                pad_id,
                                "--serial",
                                serial,
                                "--no-card",
                                "--backoff-initial-ms",
                                "60000"};
  for (const auto& a : extra) args.push_back(a);
  return std::make_unique<process>("/bin/sh", args);
}

// The first output line containing `needle`, within `timeout`.
std::optional<std::string> line_with(process& p, const std::string& needle,
                                     std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (const auto& l : p.output())
    if (contains(l, needle)) return l;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto line = p.read_line(left);
    if (!line) return std::nullopt;
    if (contains(*line, needle)) return line;
  }
}

std::string eftd_log_after_stop(installation& inst) {
  inst.eftd->stop();
  return slurp(inst.dir + "/eftd.log");
}

// A TCP connection with explicit end-of-stream: read_some() says whether the peer closed.
class tcp_conn {
 public:
  explicit tcp_conn(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~tcp_conn() { ::close(fd_); }
  int fd() const { return fd_; }
  void send(const eftd::bytes& b) {
    if (b.empty()) return;
    REQUIRE(::write(fd_, b.data(), b.size()) == static_cast<ssize_t>(b.size()));
  }
  enum class got { data, eof, timeout };
  got read_some(eftd::bytes& out, std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return got::timeout;
    std::uint8_t chunk[4096];
    const auto n = ::read(fd_, chunk, sizeof chunk);
    if (n <= 0) return got::eof;
    out.assign(chunk, chunk + n);
    return got::data;
  }

 private:
  int fd_ = -1;
};

// A pad scripted by hand inside TLS (the test's own tls_channel), so it can replay a frame or
// a whole TLS record at an exact step.
class tls_scripted_pad {
 public:
  tls_scripted_pad(int port, const pad_certs& c, const std::string& serial) : tcp_(port) {
    auto ctx =
        eftd::tls_context::client(c.ca(), c.dir + "/" + serial + ".pem", c.dir + "/" + serial + ".key");
    REQUIRE(ctx);
    auto ch = eftd::tls_channel::client(*ctx, "127.0.0.1");
    REQUIRE(ch);
    tls_.emplace(std::move(*ch));
    flush();
  }
  // Sends hello and returns the hello_ack.
  eftd::pad::hello_ack hello(const std::string& pad_id, const std::string& serial) {
    eftd::pad::hello h;
    h.pad_id = pad_id;
    h.serial = serial;
    h.model = "scripted-tls";
    send(eftd::pad::envelope{seq_.next(), 0, h});
    auto ack = next();
    REQUIRE(ack.has_value());
    auto* ha = std::get_if<eftd::pad::hello_ack>(&ack->body);
    REQUIRE(ha != nullptr);
    return *ha;
  }
  // Encrypts one frame and sends its records; they are kept for replay_last_records().
  void send(const eftd::pad::envelope& e) {
    REQUIRE(tls_->write(eftd::pad::encode(e)));
    flush();
  }
  void replay_last_records() { tcp_.send(last_records_); }
  eftd::pad::seq_counter& seq() { return seq_; }

  std::optional<eftd::pad::envelope> next(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto f = frames_.next();
      REQUIRE(f);
      if (f->has_value()) {
        auto env = eftd::pad::decode_body(**f);
        REQUIRE(env);
        return std::move(*env);
      }
      if (!receive(deadline)) return std::nullopt;
    }
  }
  // True once the server has closed the connection (within the timeout). Frames on the way,
  // and a TLS alert that ends the session, are read and dropped up to the end of the stream.
  bool closed_by_server(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!eof_) {
      if (receive(deadline)) continue;
      if (eof_ || !tls_failed_) break;
      // After the alert only the end of the stream may come.
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      eftd::bytes rest;
      const auto got = tcp_.read_some(rest, left);
      if (got == tcp_conn::got::eof) eof_ = true;
      if (got != tcp_conn::got::data) break;
    }
    return eof_;
  }
  // The server's TLS alert arrived (its session with this pad ended in an error).
  bool saw_alert() const { return tls_failed_; }

 private:
  bool receive(std::chrono::steady_clock::time_point deadline) {
    if (eof_) return false;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    eftd::bytes chunk;
    const auto got = tcp_.read_some(chunk, left);
    if (got == tcp_conn::got::eof) eof_ = true;
    if (got != tcp_conn::got::data) return false;
    auto st = tls_->feed(chunk);
    flush();
    frames_.feed(tls_->read());
    if (!st) tls_failed_ = true;
    return static_cast<bool>(st);
  }
  void flush() {
    auto out = tls_->take_output();
    if (out.empty()) return;
    last_records_ = out;
    tcp_.send(out);
  }

  tcp_conn tcp_;
  std::optional<eftd::tls_channel> tls_;
  eftd::pad::frame_reader frames_;
  eftd::pad::seq_counter seq_;
  eftd::bytes last_records_;
  bool eof_ = false;
  bool tls_failed_ = false;
};

}  // namespace

TEST_CASE("pad TLS: a sale through a TLS 1.3 pad is approved end to end", "[pad][security]") {
  installation inst("e2e-pad-tls");
  const auto certs = make_certs(inst.dir + "/certs", "VP-0001 VP-0002");
  inst.extra_config = pad_tls_config(certs);
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml", certs.args("VP-0001"));
  const auto order = order_no("TLSPAD");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "42.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK(r.result.value("masked_pan", "") == "476173******0119");
  CHECK(inst.pad->wait_for_prefix("DISPLAY Approved - order " + order, 10s).has_value());
  const auto log = eftd_log_after_stop(inst);
  CHECK(contains(log, "pads on 127.0.0.1:"));
  CHECK(contains(log, "(TLS 1.3, device certificates)"));
  CHECK(contains(log, "pad P01 connected from"));
  CHECK(contains(log, ", TLS 1.3)"));
  CHECK_FALSE(contains(log, test_pan));
}

TEST_CASE("pad TLS: unknown device certificates are refused and logged", "[pad][security]") {
  installation inst("e2e-pad-tls-unknown", false);
  const auto certs = make_certs(inst.dir + "/certs", "VP-0001 VP-0002 VP-0009");
  const auto rogue = make_certs(inst.dir + "/rogue", "VP-0001");
  inst.extra_config = pad_tls_config(certs);
  inst.start_eftd();
  {
    // A certificate for the right serial, from a CA eftd does not know.
    auto pad = spawn_pad(inst, "P01", "VP-0001", rogue.args("VP-0001", certs));
    auto line = line_with(*pad, "TLS handshake with", 15s);
    REQUIRE(line.has_value());
    CHECK(contains(*line, "failed"));
    CHECK_FALSE(any_line_contains(pad->output(), "READY"));
  }
  {
    // A genuine certificate of another pad (VP-0002) presented as VP-0001: refused at hello.
    auto pad = spawn_pad(inst, "P01", "VP-0001", certs.args("VP-0002"));
    auto line = line_with(*pad, "refused by", 15s);
    REQUIRE(line.has_value());
    CHECK(contains(*line, "device certificate does not match the serial number"));
  }
  {
    // A genuine certificate whose serial eftd has no pad for.
    auto pad = spawn_pad(inst, "P09", "VP-0009", certs.args("VP-0009"));
    auto line = line_with(*pad, "refused by", 15s);
    REQUIRE(line.has_value());
    CHECK(contains(*line, "unknown pad"));
  }
  // The listener still serves a proper pad afterwards.
  inst.start_pad("P01", "VP-0001", "visa-approve.toml", certs.args("VP-0001"));
  const auto log = eftd_log_after_stop(inst);
  CHECK(contains(log, "TLS handshake refused: unknown CA"));
  CHECK(contains(log,
                 "refused pad id 'P01' serial 'VP-0001' certificate CN 'VP-0002': device certificate does "
                 "not match the serial number"));
  CHECK(contains(log, "refused pad id 'P09' serial 'VP-0009' certificate CN 'VP-0009': unknown pad"));
}

TEST_CASE("pad TLS: a revoked pad is refused and logged", "[pad][security]") {
  installation inst("e2e-pad-tls-revoked", false);
  const auto certs = make_certs(inst.dir + "/certs", "VP-0001 VP-0003");
  inst.extra_config =
      pad_tls_config(certs) + "\n[[pads]]\nid = \"P03\"\nserial = \"VP-0003\"\nrevoked = true\n";
  inst.start_eftd();
  auto pad = spawn_pad(inst, "P03", "VP-0003", certs.args("VP-0003"));
  auto line = line_with(*pad, "refused by", 15s);
  REQUIRE(line.has_value());
  CHECK(contains(*line, "pad revoked"));
  CHECK_FALSE(any_line_contains(pad->output(), "READY"));
  // Its certificate is valid: only the revocation keeps it out, and other pads are unaffected.
  inst.start_pad("P01", "VP-0001", "visa-approve.toml", certs.args("VP-0001"));
  const auto log = eftd_log_after_stop(inst);
  CHECK(contains(log, "refused pad id 'P03' serial 'VP-0003' certificate CN 'VP-0003': pad revoked"));
}

TEST_CASE("pad TLS: a TLS 1.2-only pad and a plaintext pad are refused and logged", "[pad][security]") {
  installation inst("e2e-pad-tls-old", false);
  const auto certs = make_certs(inst.dir + "/certs", "VP-0001");
  inst.extra_config = pad_tls_config(certs);
  inst.start_eftd();
  {
    // A pad whose TLS stack stops at 1.2, with a valid device certificate.
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    REQUIRE(ctx != nullptr);
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    REQUIRE(SSL_CTX_load_verify_locations(ctx, certs.ca().c_str(), nullptr) == 1);
    REQUIRE(SSL_CTX_use_certificate_chain_file(ctx, (certs.dir + "/VP-0001.pem").c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(ctx, (certs.dir + "/VP-0001.key").c_str(), SSL_FILETYPE_PEM) == 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    tcp_conn tcp(inst.pad_port);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, tcp.fd());
    const int rc = SSL_connect(ssl);
    CHECK(rc != 1);
    const unsigned long e = ERR_peek_error();
    CHECK(ERR_GET_REASON(e) == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  }
  {
    // eftpad without --tls-*: its plaintext hello is not a TLS record.
    auto pad = spawn_pad(inst, "P01", "VP-0001", {});
    // The server's alert is no pad frame either: the pad gives up on the connection.
    auto line = line_with(*pad, "reconnecting in", 15s);
    CHECK(line.has_value());
    CHECK_FALSE(any_line_contains(pad->output(), "READY"));
  }
  const auto log = eftd_log_after_stop(inst);
  CHECK(contains(log, "TLS handshake refused: protocol version: only TLS 1.3 is accepted"));
  CHECK(contains(log, "TLS handshake refused: not TLS"));
}

TEST_CASE("pad TLS: replayed frames and replayed TLS records inside TLS close the session (R13)",
          "[pad][security]") {
  installation inst("e2e-pad-tls-replay", false);
  const auto certs = make_certs(inst.dir + "/certs", "VP-0001");
  inst.extra_config = pad_tls_config(certs);
  inst.start_eftd();
  {
    // A fresh record that carries a frame whose seq was used already: the replay guard.
    tls_scripted_pad pad(inst.pad_port, certs, "VP-0001");
    REQUIRE(pad.hello("P01", "VP-0001").accepted);
    const std::uint32_t seq = pad.seq().next();
    pad.send(eftd::pad::envelope{seq, 0, eftd::pad::event_key{0x31}});
    pad.send(eftd::pad::envelope{seq, 0, eftd::pad::event_key{0x32}});
    CHECK(pad.closed_by_server());
  }
  {
    // The same TLS record sent twice: TLS itself refuses it (its sequence number is implicit).
    tls_scripted_pad pad(inst.pad_port, certs, "VP-0001");
    REQUIRE(pad.hello("P01", "VP-0001").accepted);
    pad.send(eftd::pad::envelope{pad.seq().next(), 0, eftd::pad::event_key{0x31}});
    pad.replay_last_records();
    CHECK(pad.closed_by_server());
    // The alert that says why reaches the pad before the connection closes.
    CHECK(pad.saw_alert());
  }
  const auto log = eftd_log_after_stop(inst);
  CHECK(contains(log, "closing after protocol error pad.replay"));
  CHECK(contains(log, "closing after protocol error tls.protocol"));
}

TEST_CASE("pad TLS: eftd refuses to start when the pad listener's TLS files are unusable",
          "[pad][security]") {
  installation inst("e2e-pad-tls-badfiles", false);
  const auto certs = make_certs(inst.dir + "/certs", "VP-0001");
  // The demo configuration with the BIN table resolved, plus a pad listener whose key belongs
  // to another certificate, then one whose certificate file is missing.
  std::string demo = slurp(source_path("etc/demo.toml"));
  const std::string rel = "bin_table = \"bin-ranges.csv\"";
  REQUIRE(demo.find(rel) != std::string::npos);
  demo.replace(demo.find(rel), rel.size(), "bin_table = \"" + source_path("etc/bin-ranges.csv") + "\"");
  const std::vector<std::pair<std::string, std::string>> cases{
      {"[listen.pad.tls]\ncert_file = \"" + certs.dir + "/server.pem\"\nkey_file = \"" + certs.dir +
           "/VP-0001.key\"\nclient_ca_file = \"" + certs.ca() + "\"\n",
       "listen.pad.tls: key '" + certs.dir + "/VP-0001.key' does not match the certificate"},
      {"[listen.pad.tls]\ncert_file = \"" + certs.dir + "/absent.pem\"\nkey_file = \"" + certs.dir +
           "/server.key\"\nclient_ca_file = \"" + certs.ca() + "\"\n",
       "listen.pad.tls: certificate file '" + certs.dir + "/absent.pem' does not exist"},
  };
  for (const auto& [tls, expected] : cases) {
    const std::string config = inst.dir + "/bad.toml";
    std::ofstream(config) << demo << "\n" << tls;
    const std::string err = inst.dir + "/eftd-bad.log";
    process eftd(bin_path("eftd"),
                 {"-c", config, "--set", "listen.pos.port=0", "--set", "listen.pad.port=0", "--set",
                  "acquirers.sim.port=9", "--set", "journal.path=" + inst.db(), "--set",
                  "journal.key_file=" + inst.dir + "/journal.key", "--set",
                  "keys.store=" + inst.dir + "/keys/keys.store", "--set",
                  "keys.master_key_file=" + inst.dir + "/keys/keys.master"},
                 err);
    CHECK_FALSE(eftd.wait_ready(20s).has_value());
    CHECK(eftd.wait_exit(20s) == 1);
    const auto log = slurp(err);
    INFO(log);
    CHECK(contains(log, expected));
  }
}

TEST_CASE("pad TLS: a peer that connects and never completes the handshake is closed at the login deadline",
          "[pad][security]") {
  installation inst("e2e-pad-tls-slow", false);
  const auto certs = make_certs(inst.dir + "/certs", "VP-0001");
  inst.extra_config = pad_tls_config(certs);
  inst.start_eftd({"--set", "listen.pad.login_timeout_ms=300"});
  {
    tcp_conn silent(inst.pad_port);
    eftd::bytes got;
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(silent.read_some(got, 10s) == tcp_conn::got::eof);
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  }
  {
    // Half a handshake is no better: the deadline covers the whole of it.
    tcp_conn stalled(inst.pad_port);
    auto ctx = eftd::tls_context::client(certs.ca(), certs.dir + "/VP-0001.pem", certs.dir + "/VP-0001.key");
    REQUIRE(ctx);
    auto ch = eftd::tls_channel::client(*ctx, "127.0.0.1");
    REQUIRE(ch);
    stalled.send(ch->take_output());  // ClientHello, then nothing
    eftd::bytes got;
    tcp_conn::got r = tcp_conn::got::data;
    while (r == tcp_conn::got::data) r = stalled.read_some(got, 10s);  // the server's flight, then the end
    CHECK(r == tcp_conn::got::eof);
  }
  const auto log = eftd_log_after_stop(inst);
  CHECK(contains(log, "TLS handshake refused: no TLS handshake within 300 ms"));
}
