#include "loadgen.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>

#include "dev_certs.hpp"
#include "eftd/core/bytes.hpp"
#include "eftd/core/dukpt.hpp"
#include "eftd/core/keystore.hpp"
#include "eftd/core/p2pe.hpp"
#include "eftd/core/tls_channel.hpp"
#include "eftd/pad/messages.hpp"
#include "eftd/padsim/card_profile.hpp"
#include "eftd/padsim/hardware.hpp"
#include "eftd/padsim/icc.hpp"
#include "eftd/padsim/pad_keys.hpp"
#include "eftd/padsim/session.hpp"
#include "eftd/pos/codec.hpp"
#include "eftd/pos/messages.hpp"
#include "failover.hpp"

namespace eftd::loadgen {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {
constexpr auto token = asio::as_tuple(asio::use_awaitable);
}  // namespace

const char* to_string(tx_kind k) noexcept {
  switch (k) {
    case tx_kind::chip_pin:
      return "chip";
    case tx_kind::magstripe:
      return "magstripe";
    case tx_kind::decline:
      return "decline";
    case tx_kind::cancel:
      return "cancel";
    case tx_kind::contactless:
      return "contactless";
  }
  return "?";
}

result<std::vector<mix_weight>> parse_mix(std::string_view text) {
  std::vector<mix_weight> out;
  unsigned total = 0;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos)
      return make_error("loadgen.bad_mix", fmt::format("'{}' is not name=weight", item));
    const auto name = item.substr(0, eq);
    const auto value = item.substr(eq + 1);
    unsigned w = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), w);
    if (ec != std::errc{} || p != value.data() + value.size())
      return make_error("loadgen.bad_mix", fmt::format("weight of '{}' is not a number", name));
    bool known = false;
    for (std::size_t k = 0; k < tx_kind_count; ++k) {
      if (name == to_string(static_cast<tx_kind>(k))) {
        out.push_back({static_cast<tx_kind>(k), w});
        known = true;
      }
    }
    if (!known)
      return make_error(
          "loadgen.bad_mix",
          fmt::format("unknown kind '{}' (chip, magstripe, decline, cancel, contactless)", name));
    total += w;
  }
  if (total == 0) return make_error("loadgen.bad_mix", "the mix has no positive weight");
  return out;
}

till_ids ids_of(std::size_t index) {
  const auto n = index + 1;
  return {fmt::format("L{:05}", n), fmt::format("LP{:05}", n), fmt::format("LG-{:05}", n),
          fmt::format("LT{:06}", n)};
}

std::string config_tables(std::size_t n, const std::string& store) {
  std::string out = "# eft-loadgen tills (eft-loadgen --print-config)\n";
  for (std::size_t i = 0; i < n; ++i) {
    const auto id = ids_of(i);
    out += fmt::format("[[pads]]\nid = \"{}\"\nserial = \"{}\"\n\n", id.pad_id, id.serial);
    out += fmt::format("[[tills]]\nid = \"{}\"\nstore = \"{}\"\npad = \"{}\"\nterminal_id = \"{}\"\n\n",
                       id.till_id, store, id.pad_id, id.terminal_id);
  }
  return out;
}

namespace {

// ------------------------------------------------------------------ cards and keys

struct card_set {
  padsim::card_profile chip_pin;      // visa-dda-approve with online PIN as its only PIN CVM
  padsim::card_profile chip_decline;  // chip-decline: the simulator answers 05
  padsim::card_profile magstripe;     // visa-approve
  padsim::card_profile contactless;   // visa-qvsdc-contactless
};

result<std::string> read_text(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return make_error("loadgen.card_io", fmt::format("cannot read {}", file.string()));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

result<padsim::card_profile> load_profile(const std::filesystem::path& dir, const std::string& name,
                                          const std::string& extra_app_line = {}) {
  auto text = read_text(dir / name);
  if (!text) return text.err();
  if (!extra_app_line.empty()) {
    // Added to the (single) application table: the profile otherwise stays the shipped one.
    const std::string marker = "[[chip.application]]\n";
    const auto at = text->find(marker);
    if (at == std::string::npos) return make_error("loadgen.card_io", name + " has no [[chip.application]]");
    text->insert(at + marker.size(), extra_app_line + "\n");
  }
  return padsim::parse_card_profile(*text, name, dir);
}

result<card_set> load_cards(const std::filesystem::path& dir) {
  card_set c;
  // CVM list: amounts X = Y = 0, then 42 03 (enciphered PIN verified online, if the terminal
  // supports it; on failure try the next rule), 1F 00 (no CVM). The shipped DDA card puts
  // offline PIN first; the benchmark's sale is the online-PIN one (PIN block under DUKPT,
  // translated to the acquirer's ZPK).
  auto chip = load_profile(dir, "visa-dda-approve.toml", "cvm_list = \"000000000000000042031F00\"");
  if (!chip) return chip.err();
  c.chip_pin = std::move(*chip);
  auto decl = load_profile(dir, "chip-decline.toml");
  if (!decl) return decl.err();
  c.chip_decline = std::move(*decl);
  auto mag = load_profile(dir, "visa-approve.toml");
  if (!mag) return mag.err();
  c.magstripe = std::move(*mag);
  auto cl = load_profile(dir, "visa-qvsdc-contactless.toml");
  if (!cl) return cl.err();
  c.contactless = std::move(*cl);
  return c;
}

// Development BDK from tools/dev-keys' key store: each simulated pad gets an initial key of
// its own (initial key ID = BDK ID AE5D0001 || 0x4C000000 + index), as a key-injection
// facility would make, so no two pads share DUKPT keys.
class pad_key_factory {
 public:
  static result<pad_key_factory> open(const std::filesystem::path& dir) {
    auto mk = keystore::file_master_key::load(dir / "keys.master", false);
    if (!mk) return mk.err();
    auto store = keystore::key_store::load(dir / "keys.store", **mk);
    if (!store) return store.err();
    auto bdk = store->active("bdk-aes");
    if (!bdk) return bdk.err();
    pad_key_factory f;
    f.bdk_ = (*bdk)->key;
    return f;
  }

  result<padsim::pad_keys> keys_for(std::size_t index) const {
    const std::uint32_t derivation = 0x4C000000u + static_cast<std::uint32_t>(index);
    bytes id{0xAE, 0x5D, 0x00, 0x01};
    for (int shift = 24; shift >= 0; shift -= 8) id.push_back(static_cast<std::uint8_t>(derivation >> shift));
    auto type = aes_dukpt::aes_type_for_length(bdk_.size());
    if (!type) return type.err();
    auto ik = aes_dukpt::initial_key(bdk_.view(), id, *type);
    if (!ik) return ik.err();
    bytes ksn = id;
    ksn.insert(ksn.end(), 4, 0);  // counter 0: begin_transaction() moves to 1
    padsim::pad_keys keys;
    if (auto st = keys.add(p2pe::dukpt_kind::aes, std::move(*ik), std::move(ksn)); !st) return st.err();
    return keys;
  }

 private:
  secure_bytes bdk_;
};

// ------------------------------------------------------------------ the pad's devices

// Display shows nothing; the keypad holds the keys the customer is about to type; the reader
// presents the card the till chose for the running transaction, at once.
class till_device final : public padsim::display_device, public padsim::keypad, public padsim::card_reader {
 public:
  void show(const pad::display&) override {}
  bool beep(std::uint8_t, std::uint16_t) override { return true; }
  bool set_leds(std::uint8_t, pad::led_state) override { return true; }

  std::optional<std::uint8_t> poll_key(padsim::pad_clock::time_point) override {
    if (keys_.empty()) return std::nullopt;
    const auto k = keys_.front();
    keys_.pop_front();
    return k;
  }

  read_result read(const pad::read_card& request) override {
    if (!card_) return padsim::reader_failure{pad::pad_error_code::timeout, "no card presented"};
    const auto enabled = [&](pad::interface_mask m) {
      return (request.interfaces & static_cast<std::uint8_t>(m)) != 0;
    };
    padsim::presented_card out;
    out.pan = card_->pan;
    if (card_->kind == "contactless") {
      if (!enabled(pad::interface_mask::contactless)) {
        // As the virtual pad: a card at a reader that is off is never read.
        contactless_refused_ = true;
        return padsim::reader_failure{pad::pad_error_code::timeout, "contactless reader not enabled"};
      }
      out.mode = pad::entry_mode::contactless;
      out.chip = chip_;
      return out;
    }
    if (card_->kind == "chip" && enabled(pad::interface_mask::chip)) {
      out.mode = pad::entry_mode::chip;
      out.chip = chip_;
      out.track2 = card_->track2;
      return out;
    }
    if (!enabled(pad::interface_mask::magstripe) || card_->track2.empty())
      return padsim::reader_failure{pad::pad_error_code::timeout,
                                    "no card presented on an enabled interface"};
    out.mode = pad::entry_mode::magstripe;
    out.track2 = card_->track2;
    return out;
  }

  // The next transaction's card (its ICC kept by the till) and PIN typed when asked: twice,
  // in case one sale asks for it twice (a wrong-PIN retry would need more).
  void present(const padsim::card_profile* card, std::shared_ptr<padsim::icc> chip) {
    card_ = card;
    chip_ = std::move(chip);
    contactless_refused_ = false;
    keys_.clear();
    for (int round = 0; round < 2; ++round) {
      for (char d : {'1', '2', '3', '4'}) keys_.push_back(static_cast<std::uint8_t>(d));
      keys_.push_back(pad::keys::enter);
    }
  }
  bool contactless_refused() const noexcept { return contactless_refused_; }

 private:
  const padsim::card_profile* card_ = nullptr;
  std::shared_ptr<padsim::icc> chip_;
  std::deque<std::uint8_t> keys_;
  bool contactless_refused_ = false;
};

// ------------------------------------------------------------------ one till

struct till {
  std::size_t index = 0;
  till_ids ids;
  asio::ip::address local;  // source address of both connections
  till_device device;
  padsim::pad_keys keys;
  std::unique_ptr<padsim::pad_session> session;
  std::shared_ptr<const tls_context> pad_tls;
  std::shared_ptr<const tls_context> pos_tls;
  std::optional<tls_channel> pos_channel;  // with pos_tls: the POS connection's TLS session

  tcp::socket pad_sock;
  tcp::socket pos_sock;
  asio::steady_timer pos_timer;
  pos::line_reader lines;
  std::vector<char> pos_buf = std::vector<char>(16384);
  // The highest fencing epoch a server of the pair answered with: a message with a lower one is
  // from a deposed node (pos.stale_epoch; the till goes to the other server).
  std::uint64_t epoch = 0;
  bool pad_ready = false;
  bool pos_ready = false;
  bool failed = false;  // could not connect: left out of the pool
  // With a standby: which server (0 primary, 1 standby) each side talks to now, and the
  // switch time of the POS side.
  int pos_server = 0;
  int pad_server = 0;
  switch_clock pos_switch;
  std::uint64_t next_id = 1;
  // One ICC per card profile, kept between sales like a customer's card (its ATC goes on).
  std::shared_ptr<padsim::icc> chips[tx_kind_count];

  explicit till(asio::io_context& io) : pad_sock(io), pos_sock(io), pos_timer(io) {}
};

struct engine {
  const options& opt;
  asio::io_context io{1};
  card_set cards;
  std::vector<std::unique_ptr<till>> tills;
  std::deque<till*> idle;
  summary sum;
  std::FILE* history = nullptr;
  clock_type::time_point history_start = clock_type::now();
  std::string run_tag;
  std::uint64_t order_seq = 0;
  std::vector<unsigned> cumulative;  // mix weights, cumulative
  std::vector<tx_kind> kinds;
  std::mt19937_64 rng;
  bool stopping = false;      // tear-down: pad loops end instead of reconnecting
  bool load_over = false;     // no new transactions start
  std::uint64_t started = 0;  // transactions started in the load phase
  std::uint64_t in_flight = 0;
  std::uint64_t last_tx = 0;
  std::vector<std::uint32_t> second_lat;  // latencies of the current progress second
  clock_type::time_point load_start;

  explicit engine(const options& o) : opt(o), rng(o.seed) {
    unsigned acc = 0;
    for (const auto& m : opt.mix) {
      if (m.weight == 0) continue;
      acc += m.weight;
      cumulative.push_back(acc);
      kinds.push_back(m.kind);
    }
    // Order numbers unique across runs against the same journal: seconds of the start time.
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    run_tag = fmt::format("G{}", std::chrono::duration_cast<std::chrono::seconds>(now).count() % 100000000);
  }

  tx_kind pick() {
    std::uniform_int_distribution<unsigned> d(1, cumulative.back());
    const auto v = d(rng);
    for (std::size_t i = 0; i < cumulative.size(); ++i)
      if (v <= cumulative[i]) return kinds[i];
    return kinds.back();
  }

  asio::ip::address source_address(std::size_t index) const {
    if (!opt.spread_addresses) return asio::ip::make_address("0.0.0.0");
    // 127.0.x.y with y in 1..250: all of 127/8 is loopback on Linux.
    const std::size_t k = index / std::max<std::size_t>(1, opt.per_address);
    return asio::ip::make_address_v4(fmt::format("127.0.{}.{}", (k / 250) % 256, k % 250 + 1));
  }

  bool have_standby() const { return opt.standby_pos_port != 0; }
  std::uint16_t pos_port_of(int server) const { return server == 0 ? opt.pos_port : opt.standby_pos_port; }
  std::uint16_t pad_port_of(int server) const { return server == 0 ? opt.pad_port : opt.standby_pad_port; }

  // The till's POS failed on its current server (`code`): with a standby, note the start of a
  // switch and aim at the other server; alone, aim at the same one again (it may be
  // restarting). True when the caller should log in again.
  bool leave_pos_server(till& t, std::string_view code) {
    const auto step = after_failure(code, have_standby());
    if (step == next_step::stay) return false;
    t.pos_switch.failed(t.pos_server, clock_type::now());
    if (step == next_step::other_server) t.pos_server ^= 1;
    return true;
  }

  // Opens `sock` from the till's source address to host:port within the connect timeout.
  asio::awaitable<bool> connect(till& t, tcp::socket& sock, std::uint16_t port) {
    boost::system::error_code ec;
    const tcp::endpoint server(asio::ip::make_address(opt.host, ec), port);
    if (ec) co_return false;
    sock.open(server.protocol(), ec);
    if (ec) co_return false;
    if (opt.spread_addresses && server.address().is_loopback()) {
      const tcp::endpoint local_ep(t.local, 0);
      sock.bind(local_ep, ec);
      if (ec) {
        spdlog::warn("loadgen: till {}: bind {}: {}", t.ids.till_id, t.local.to_string(), ec.message());
        co_return false;
      }
    }
    asio::steady_timer deadline(io, opt.connect_timeout);
    auto r = co_await (sock.async_connect(server, token) || deadline.async_wait(token));
    if (r.index() == 1) co_return false;
    if (auto [cec] = std::get<0>(r); cec) {
      // Refused connects are how a switch or a restart starts, and are retried until the
      // connect timeout: not worth a warning each (pos_login warns when it gives up).
      spdlog::debug("loadgen: till {}: connect to port {}: {}", t.ids.till_id, port, cec.message());
      co_return false;
    }
    sock.set_option(tcp::no_delay(true), ec);
    co_return true;
  }

  // ---------------------------------------------------------------- pad side

  asio::awaitable<bool> pad_write(till& t, std::optional<tls_channel>& tls,
                                  const std::vector<bytes>& frames) {
    bytes out;
    for (const auto& f : frames) {
      if (tls) {
        if (auto st = tls->write(f); !st) co_return false;
      } else {
        out.insert(out.end(), f.begin(), f.end());
      }
    }
    if (tls) out = tls->take_output();
    if (out.empty()) co_return true;
    auto [ec, n] = co_await asio::async_write(t.pad_sock, asio::buffer(out), token);
    co_return !ec;
  }

  // One pad connection at a time, reconnecting while the run lasts (eftd drops pads that miss
  // pings; a lost pad must come back as a real one would).
  asio::awaitable<void> pad_loop(till& t) {
    std::vector<std::uint8_t> buf(8192);
    asio::steady_timer tick(io);
    while (!stopping) {
      t.pad_ready = false;
      if (t.pad_sock.is_open()) {
        boost::system::error_code ignore;
        t.pad_sock.close(ignore);
      }
      if (!co_await connect(t, t.pad_sock, pad_port_of(t.pad_server))) {
        if (stopping) break;
        // With a standby: the other pad port next (the server may have died), quickly.
        if (have_standby()) t.pad_server ^= 1;
        tick.expires_after(milliseconds(have_standby() ? 200 : 500));
        co_await tick.async_wait(token);
        continue;
      }
      std::optional<tls_channel> tls;
      if (t.pad_tls) {
        auto ch = tls_channel::client(t.pad_tls, opt.host);
        if (!ch) {
          spdlog::error("loadgen: pad {}: TLS: {}", t.ids.pad_id, ch.err().message);
          t.failed = true;
          co_return;
        }
        tls.emplace(std::move(*ch));
      }
      std::vector<bytes> hello;
      hello.push_back(t.session->start());
      if (!co_await pad_write(t, tls, hello)) continue;
      for (;;) {
        std::size_t n = 0;
        boost::system::error_code ec;
        if (const auto wake = t.session->wake_at()) {
          // A command waits for input the keypad did not hold yet: poll it on the session's clock.
          tick.expires_at(*wake);
          auto r = co_await (t.pad_sock.async_read_some(asio::buffer(buf), token) || tick.async_wait(token));
          if (r.index() == 1) {
            auto out = t.session->on_tick(clock_type::now());
            if (!co_await pad_write(t, tls, out.send)) break;
            continue;
          }
          std::tie(ec, n) = std::get<0>(r);
        } else {
          std::tie(ec, n) = co_await t.pad_sock.async_read_some(asio::buffer(buf), token);
        }
        if (ec) break;
        byte_view received(buf.data(), n);
        bytes plain;
        if (tls) {
          auto st = tls->feed(received);
          const bytes records = tls->take_output();
          if (!records.empty()) {
            auto [wec, wn] = co_await asio::async_write(t.pad_sock, asio::buffer(records), token);
            if (wec) break;
          }
          if (!st) {
            spdlog::warn("loadgen: pad {}: TLS: {}", t.ids.pad_id, st.err().message);
            break;
          }
          plain = tls->read();
          received = plain;
        }
        auto out = t.session->on_bytes(received, clock_type::now());
        if (!out) {
          const bool standby =
              out.err().code == "padsim.refused" && have_standby() && standby_refusal(out.err().message);
          if (standby) {
            spdlog::debug("loadgen: pad {}: {}", t.ids.pad_id, out.err().message);
          } else {
            spdlog::warn("loadgen: pad {}: {} ({})", t.ids.pad_id, out.err().message, out.err().code);
            if (out.err().code == "padsim.refused") t.failed = true;
          }
          break;
        }
        if (!co_await pad_write(t, tls, out->send)) break;
        if (t.session->accepted()) t.pad_ready = true;
      }
      t.pad_ready = false;
      if (t.failed) co_return;
      // A closed connection or a standby's refusal: with a standby, the other pad port next.
      if (have_standby()) t.pad_server ^= 1;
      if (!stopping) {
        tick.expires_after(milliseconds(200));
        co_await tick.async_wait(token);
      }
    }
  }

  // ---------------------------------------------------------------- POS side

  asio::awaitable<bool> pos_send(till& t, const pos::message& m) {
    const std::string line = pos::encode(m);
    if (!t.pos_channel) {
      auto [ec, n] = co_await asio::async_write(t.pos_sock, asio::buffer(line), token);
      co_return !ec;
    }
    // Under TLS the line waits in the channel until the handshake is done.
    if (auto st = t.pos_channel->write(as_bytes(line)); !st) co_return false;
    const bytes records = t.pos_channel->take_output();
    if (records.empty()) co_return true;
    auto [ec, n] = co_await asio::async_write(t.pos_sock, asio::buffer(records), token);
    co_return !ec;
  }

  // The next message from eftd before `deadline`; nullopt on timeout, I/O or decode error
  // (`why` says which).
  asio::awaitable<std::optional<pos::message>> pos_read(till& t, clock_type::time_point deadline,
                                                        std::string& why) {
    for (;;) {
      auto line = t.lines.next();
      if (!line) {
        why = line.err().code;
        co_return std::nullopt;
      }
      if (*line) {
        if ((*line)->find("\"epoch\":") != std::string::npos) {
          const auto epoch = pos::peek_epoch(**line);
          if (epoch != 0 && epoch < t.epoch) {
            why = std::string(pos::codes::stale_epoch);
            co_return std::nullopt;
          }
          t.epoch = std::max(t.epoch, epoch);
        }
        auto m = pos::decode(**line);
        if (!m) {
          why = m.err().code;
          co_return std::nullopt;
        }
        co_return std::move(*m);
      }
      t.pos_timer.expires_at(deadline);
      auto r = co_await (t.pos_sock.async_read_some(asio::buffer(t.pos_buf), token) ||
                         t.pos_timer.async_wait(token));
      if (r.index() == 1) {
        why = "loadgen.timeout";
        co_return std::nullopt;
      }
      auto [ec, n] = std::get<0>(r);
      if (ec) {
        why = "loadgen.disconnected";
        co_return std::nullopt;
      }
      if (!t.pos_channel) {
        t.lines.feed(std::string_view(t.pos_buf.data(), n));
        continue;
      }
      auto st = t.pos_channel->feed(byte_view(reinterpret_cast<const std::uint8_t*>(t.pos_buf.data()), n));
      const bytes records = t.pos_channel->take_output();
      if (!records.empty()) {
        auto [wec, wn] = co_await asio::async_write(t.pos_sock, asio::buffer(records), token);
        if (wec) {
          why = "loadgen.disconnected";
          co_return std::nullopt;
        }
      }
      const bytes plain = t.pos_channel->read();
      t.lines.feed(std::string_view(reinterpret_cast<const char*>(plain.data()), plain.size()));
      if (!st) {
        why = st.err().code;
        if (!t.lines.buffered()) co_return std::nullopt;
      }
    }
  }

  // One login attempt on the till's current server: "" when logged in, else the error code
  // (loadgen.* for transport failures, the server's code for a refusal).
  asio::awaitable<std::string> pos_login_once(till& t) {
    boost::system::error_code ignore;
    t.pos_sock.close(ignore);
    t.pos_sock = tcp::socket(io);
    t.lines = pos::line_reader();
    if (!co_await connect(t, t.pos_sock, pos_port_of(t.pos_server))) co_return std::string("loadgen.connect");
    t.pos_channel.reset();
    if (t.pos_tls) {
      auto ch = tls_channel::client(t.pos_tls, opt.host);
      if (!ch) {
        spdlog::error("loadgen: till {}: TLS: {}", t.ids.till_id, ch.err().message);
        co_return std::string("loadgen.tls_setup");
      }
      t.pos_channel.emplace(std::move(*ch));
    }
    pos::login l;
    l.id = "l1";
    l.till_id = t.ids.till_id;
    l.client = "eft-loadgen";
    l.capabilities = {"prompt"};
    const pos::message m = l;
    if (!co_await pos_send(t, m)) co_return std::string("loadgen.disconnected");
    std::string why;
    const auto deadline = clock_type::now() + opt.connect_timeout;
    auto reply = co_await pos_read(t, deadline, why);
    if (reply && std::holds_alternative<pos::login_ok>(*reply)) co_return std::string();
    const auto* e = reply ? std::get_if<pos::error>(&*reply) : nullptr;
    if (!have_standby() || !e || e->code != "not_active")
      spdlog::warn("loadgen: till {}: login failed: {}", t.ids.till_id, e ? e->code + " " + e->message : why);
    if (e) co_return e->code.empty() ? std::string("loadgen.error") : e->code;
    co_return why.empty() ? std::string("loadgen.unexpected") : why;
  }

  // Logs the till in. With a standby, a failed connect or not_active sends it to the other
  // server, in rounds over both (a short pause between rounds: the witness may not have made
  // the standby active yet) until the connect timeout; the till is left out (failed) after.
  // Alone, a failed connect is retried on the same server (a pause after each: it may be
  // restarting) until the connect timeout.
  asio::awaitable<void> pos_login(till& t) {
    t.pos_ready = false;
    const auto deadline = clock_type::now() + opt.connect_timeout;
    asio::steady_timer pause(io);
    for (int attempt = 1;; ++attempt) {
      const std::string code = co_await pos_login_once(t);
      if (code.empty()) {
        if (const auto took = t.pos_switch.logged_in(t.pos_server, clock_type::now())) {
          ++sum.switches;
          sum.switch_us.push_back(static_cast<std::uint32_t>(took->count()));
        }
        t.pos_ready = true;
        co_return;
      }
      if (!leave_pos_server(t, code) || stopping || clock_type::now() >= deadline) {
        if (!stopping) spdlog::warn("loadgen: till {}: left out after login failure {}", t.ids.till_id, code);
        t.failed = true;
        co_return;
      }
      if (!have_standby() || attempt % 2 == 0) {
        pause.expires_after(milliseconds(100));
        co_await pause.async_wait(token);
      }
    }
  }

  struct outcome {
    std::string result;  // approved | declined | cancelled | failed, or "" with `error`
    std::string error;   // protocol/transport/server error code
    std::string reason;  // result.reason.code
  };

  // Sends one transaction request and waits for its result, answering prompts with their
  // default value (the cashier accepts what eftd proposes).
  // History for the checkers (issue 8): invoke before the request, then ok (a result: value =
  // its outcome), fail (eftd refused it: value = the error code) or unknown (no answer:
  // timeout or lost connection, the order's fate is open).
  // With a standby, an `unknown` is later resolved by a status_query: a second line for the
  // same op and order, `ok` (value = the order's final state) or `fail` (value "unknown": the
  // server never saw it), with "via":"status" (tools/loadgen/README.md).
  void record(const till& t, const char* type, const char* op, const std::string& order_no,
              const std::string& value, bool via_status = false) {
    if (!history) return;
    const double ms = std::chrono::duration<double, std::milli>(clock_type::now() - history_start).count();
    std::fprintf(
        history,
        "{\"t_ms\":%.3f,\"till\":\"%s\",\"op\":\"%s\",\"order\":\"%s\",\"type\":\"%s\",\"value\":\"%s\"%s}\n",
        ms, t.ids.till_id.c_str(), op, order_no.c_str(), type, value.c_str(),
        via_status ? ",\"via\":\"status\"" : "");
  }

  asio::awaitable<outcome> transact(till& t, const pos::message& request, const std::string& order_no) {
    const char* op = std::holds_alternative<pos::cancel>(request) ? "cancel" : "sale";
    record(t, "invoke", op, order_no, "");
    auto o = co_await exchange(t, request, order_no);
    if (o.error.empty()) {
      record(t, "ok", op, order_no, o.result);
    } else if (answer_lost(o.error)) {
      record(t, "unknown", op, order_no, o.error);
    } else {
      record(t, "fail", op, order_no, o.error);
    }
    co_return o;
  }

  // transact(), and with a standby what a till does when its server fails under it: a request
  // the standby refused (not_active) did not happen and goes again, once, to the other server;
  // an answer lost with the connection is asked for there (resolve).
  asio::awaitable<outcome> complete(till& t, const pos::message& request, const std::string& order_no) {
    auto o = co_await transact(t, request, order_no);
    if (o.error.empty() || !leave_pos_server(t, o.error)) co_return o;
    const char* op = std::holds_alternative<pos::cancel>(request) ? "cancel" : "sale";
    co_await pos_login(t);
    if (!t.pos_ready) {
      if (answer_lost(o.error)) ++sum.unresolved;
      o.error = "loadgen.switch_failed";
      co_return o;
    }
    if (o.error == "not_active") {
      ++sum.not_active;
      co_return co_await transact(t, request, order_no);
    }
    co_return co_await resolve(t, op, order_no);
  }

  // PROTOCOL.md section 8 on the till's (new) server: status_query for the order whose answer
  // was lost until its state is final, each try within the connect timeout, all of it within
  // the transaction timeout. A failure on the way moves the till again (both servers may be
  // in the middle of a switch).
  asio::awaitable<outcome> resolve(till& t, const char* op, const std::string& order_no) {
    outcome o;
    const auto give_up_at = clock_type::now() + opt.tx_timeout;
    asio::steady_timer pause(io);
    while (clock_type::now() < give_up_at && !stopping) {
      if (!t.pos_ready) {
        co_await pos_login(t);
        if (!t.pos_ready) break;
      }
      pos::status_query q;
      q.id = fmt::format("r{}", t.next_id++);
      q.order_no = order_no;
      const pos::message qm = q;
      std::string code;
      if (co_await pos_send(t, qm)) {
        const auto deadline = std::min(give_up_at, clock_type::now() + opt.connect_timeout);
        for (;;) {
          auto m = co_await pos_read(t, deadline, code);
          if (!m) break;
          if (auto* e = std::get_if<pos::error>(&*m); e && (e->id == q.id || e->id.empty())) {
            code = e->code.empty() ? std::string("loadgen.error") : e->code;
            break;
          }
          auto* st = std::get_if<pos::order_status>(&*m);
          if (!st || st->id != q.id) continue;  // anything else is not this question's answer
          if (const auto type = resolution_type(st->state)) {
            record(t, type->c_str(), op, order_no, st->state, true);
            ++sum.recovered;
            if (*type == "ok") {
              // reversed: approved, then reversed; the customer paid nothing.
              o.result = st->state == "reversed" ? std::string("cancelled") : st->state;
              if (st->last_result) o.reason = st->last_result->why.code;
            } else {
              o.error = "status_unknown";
            }
            co_return o;
          }
          code.clear();  // in_progress: ask again shortly
          break;
        }
      } else {
        code = "loadgen.disconnected";
      }
      if (!code.empty()) {
        if (!leave_pos_server(t, code)) break;
        t.pos_ready = false;
        continue;
      }
      pause.expires_after(milliseconds(200));
      co_await pause.async_wait(token);
    }
    ++sum.unresolved;
    o.error = "loadgen.unresolved";
    co_return o;
  }

  asio::awaitable<outcome> exchange(till& t, const pos::message& request, const std::string& order_no) {
    outcome o;
    if (!co_await pos_send(t, request)) {
      o.error = "loadgen.disconnected";
      co_return o;
    }
    const auto deadline = clock_type::now() + opt.tx_timeout;
    for (;;) {
      std::string why;
      auto m = co_await pos_read(t, deadline, why);
      if (!m) {
        o.error = why;
        co_return o;
      }
      if (auto* r = std::get_if<pos::result>(&*m); r && r->order_no == order_no) {
        o.result = r->outcome;
        o.reason = r->why.code;
        co_return o;
      }
      if (auto* e = std::get_if<pos::error>(&*m)) {
        o.error = e->code.empty() ? std::string("loadgen.error") : e->code;
        co_return o;
      }
      if (auto* p = std::get_if<pos::prompt>(&*m)) {
        pos::answer a;
        a.id = fmt::format("q{}", t.next_id++);
        a.prompt_id = p->prompt_id;
        a.value = p->default_value;
        const pos::message am = a;
        if (!co_await pos_send(t, am)) {
          o.error = "loadgen.disconnected";
          co_return o;
        }
      }
      // status lines (stages, heartbeats) need nothing
    }
  }

  std::shared_ptr<padsim::icc> chip_for(till& t, tx_kind k, const padsim::card_profile& p) {
    auto& slot = t.chips[static_cast<std::size_t>(k)];
    if (!slot && p.chip) slot = padsim::make_icc_sim(p);
    return slot;
  }

  void count_error(const std::string& code) {
    ++sum.errors;
    ++sum.error_codes[code];
  }

  // A POS connection whose transaction ended in a transport error cannot be trusted for the
  // next one (an old result may still arrive): log in again.
  asio::awaitable<void> relogin(till& t) {
    boost::system::error_code ignore;
    t.pos_sock.close(ignore);
    t.pos_sock = tcp::socket(io);
    t.lines = pos::line_reader();
    t.pos_ready = false;
    t.failed = false;
    co_await pos_login(t);
  }

  asio::awaitable<void> run_one(till& t) {
    const tx_kind kind = pick();
    ++sum.by_kind[to_string(kind)];
    const padsim::card_profile* card = &cards.chip_pin;
    if (kind == tx_kind::magstripe) card = &cards.magstripe;
    if (kind == tx_kind::decline) card = &cards.chip_decline;
    if (kind == tx_kind::contactless) card = &cards.contactless;
    t.device.present(card, chip_for(t, kind, *card));

    pos::sale s;
    s.id = fmt::format("s{}", t.next_id++);
    s.order_no = fmt::format("{}-{}", run_tag, ++order_seq);
    s.currency = opt.currency;
    s.amount = opt.amount;
    const pos::message m = s;
    const auto t0 = clock_type::now();
    const auto o = co_await complete(t, m, s.order_no);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t0).count();

    if (kind == tx_kind::contactless && t.device.contactless_refused()) {
      ++sum.unsupported;
      co_return;
    }
    ++sum.tx;
    sum.latencies_us.push_back(static_cast<std::uint32_t>(us));
    second_lat.push_back(static_cast<std::uint32_t>(us));
    if (!o.error.empty()) {
      count_error(o.error);
      co_await relogin(t);
      co_return;
    }
    // A decline is expected only from the declining card; anything else is an error, named
    // by its reason code so the summary says what went wrong.
    const bool expect_decline = kind == tx_kind::decline;
    if (o.result == "approved" && !expect_decline) {
      ++sum.approved;
    } else if (o.result == "declined" && expect_decline) {
      ++sum.declined;
    } else {
      count_error(fmt::format("{}:{}", o.result, o.reason.empty() ? std::string("-") : o.reason));
      co_return;
    }
    if (kind != tx_kind::cancel) co_return;
    pos::cancel c;
    c.id = fmt::format("c{}", t.next_id++);
    c.order_no = s.order_no;
    const pos::message cm = c;
    const auto co = co_await complete(t, cm, s.order_no);
    ++sum.cancels;
    if (!co.error.empty() || co.result == "failed" || co.result == "declined") {
      ++sum.cancel_errors;
      ++sum.error_codes["cancel:" + (co.error.empty() ? co.result + ":" + co.reason : co.error)];
      if (!co.error.empty()) co_await relogin(t);
    }
  }

  // ---------------------------------------------------------------- load

  bool may_start() const { return !load_over && (opt.count == 0 || started < opt.count); }

  asio::awaitable<void> run_on(till* t) {
    ++in_flight;
    co_await run_one(*t);
    const auto pad_with_pos = [t] { return t->pad_ready && t->pad_server == t->pos_server; };
    if (!pad_with_pos() && !t->failed) {
      // After a switch (or a restart of the one server) the pad may still be on its way to the
      // POS side's server; a sale now would be refused with pad_unavailable.
      asio::steady_timer wait(io);
      const auto deadline = clock_type::now() + opt.connect_timeout;
      while (!pad_with_pos() && !stopping && clock_type::now() < deadline) {
        wait.expires_after(milliseconds(5));
        co_await wait.async_wait(token);
      }
    }
    --in_flight;
    if (!t->failed) idle.push_back(t);
  }

  asio::awaitable<void> closed_worker() {
    asio::steady_timer wait(io);
    while (may_start()) {
      if (idle.empty() && in_flight == 0) {
        // Every till lost (eftd refused or dropped them): nothing can run any more.
        load_over = true;
        break;
      }
      if (idle.empty()) {
        // Every till busy: look again shortly.
        wait.expires_after(milliseconds(5));
        co_await wait.async_wait(token);
        continue;
      }
      till* t = idle.front();
      idle.pop_front();
      ++started;
      co_await run_on(t);
    }
  }

  asio::awaitable<void> open_loop() {
    asio::steady_timer tick(io);
    const auto interval = std::chrono::duration<double>(1.0 / opt.rate);
    auto next = clock_type::now();
    while (may_start()) {
      // Starts due by now (a late wake-up starts the ones it missed: the schedule is open-loop).
      while (next <= clock_type::now() && may_start()) {
        next += std::chrono::duration_cast<clock_type::duration>(interval);
        if (idle.empty()) {
          if (in_flight == 0) load_over = true;  // every till lost: nothing can run any more
          ++sum.dropped;
          continue;
        }
        till* t = idle.front();
        idle.pop_front();
        ++started;
        asio::co_spawn(io, run_on(t), asio::detached);
      }
      tick.expires_at(next);
      co_await tick.async_wait(token);
    }
  }

  static std::uint32_t percentile(std::vector<std::uint32_t>& v, double p) {
    if (v.empty()) return 0;
    const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
  }

  asio::awaitable<void> progress() {
    asio::steady_timer t(io);
    auto next = load_start;
    while (!(load_over && in_flight == 0)) {
      next += std::chrono::seconds(1);
      t.expires_at(next);
      co_await t.async_wait(token);
      const double el = std::chrono::duration<double>(clock_type::now() - load_start).count();
      const auto done = sum.tx;
      const auto p99 = percentile(second_lat, 0.99);
      if (opt.progress)
        std::fprintf(
            stderr,
            "[%6.1fs] tx %llu  %llu/s  p99(1s) %.1f ms  errors %llu  in flight %llu  idle tills %zu\n", el,
            static_cast<unsigned long long>(done), static_cast<unsigned long long>(done - last_tx),
            p99 / 1000.0, static_cast<unsigned long long>(sum.errors),
            static_cast<unsigned long long>(in_flight), idle.size());
      last_tx = done;
      second_lat.clear();
    }
  }

  asio::awaitable<void> control() {
    // SIGINT/SIGTERM end the load like --duration does: no new transaction starts, the running
    // ones finish (lost answers resolved), then the summary. The chaos tests stop it this way.
    asio::signal_set stop_signals(io, SIGINT, SIGTERM);
    stop_signals.async_wait([this](const boost::system::error_code& ec, int) {
      if (!ec) load_over = true;
    });
    // Connect the tills in waves, so eftd's accept queue and handshakes are not flooded.
    const std::size_t wave = 100;
    asio::steady_timer wait(io);
    const auto connect_start = clock_type::now();
    for (std::size_t first = 0; first < tills.size(); first += wave) {
      const std::size_t last = std::min(tills.size(), first + wave);
      for (std::size_t i = first; i < last; ++i) {
        asio::co_spawn(io, pad_loop(*tills[i]), asio::detached);
      }
      // The pad first: eftd refuses a sale while the till's pad is not connected.
      const auto deadline = clock_type::now() + opt.connect_timeout;
      for (;;) {
        bool all = true;
        for (std::size_t i = first; i < last; ++i)
          if (!tills[i]->pad_ready && !tills[i]->failed) all = false;
        if (all || clock_type::now() > deadline) break;
        wait.expires_after(milliseconds(5));
        co_await wait.async_wait(token);
      }
      for (std::size_t i = first; i < last; ++i) {
        if (tills[i]->pad_ready)
          asio::co_spawn(io, pos_login(*tills[i]), asio::detached);
        else
          tills[i]->failed = true;
      }
      for (;;) {
        bool all = true;
        for (std::size_t i = first; i < last; ++i)
          if (!tills[i]->pos_ready && !tills[i]->failed) all = false;
        if (all || clock_type::now() > deadline) break;
        wait.expires_after(milliseconds(5));
        co_await wait.async_wait(token);
      }
    }
    for (auto& t : tills) {
      if (t->pos_ready && t->pad_ready && !t->failed) {
        idle.push_back(t.get());
        ++sum.tills_ready;
      }
    }
    if (opt.progress)
      std::fprintf(stderr, "loadgen: %zu of %zu tills connected in %.1f s\n", sum.tills_ready, tills.size(),
                   std::chrono::duration<double>(clock_type::now() - connect_start).count());

    load_start = clock_type::now();
    if (sum.tills_ready > 0) {
      asio::co_spawn(io, progress(), asio::detached);
      if (opt.rate > 0) {
        asio::co_spawn(io, open_loop(), asio::detached);
      } else {
        const std::size_t c =
            opt.concurrency == 0 ? sum.tills_ready : std::min(opt.concurrency, sum.tills_ready);
        for (std::size_t i = 0; i < c; ++i) asio::co_spawn(io, closed_worker(), asio::detached);
      }
      for (;;) {
        const bool timed_out = opt.duration.count() > 0 && clock_type::now() - load_start >= opt.duration;
        if (timed_out) load_over = true;
        if (opt.count > 0 && started >= opt.count) load_over = true;
        if (load_over && in_flight == 0) break;
        wait.expires_after(milliseconds(10));
        co_await wait.async_wait(token);
      }
    }
    load_over = true;
    sum.seconds = std::chrono::duration<double>(clock_type::now() - load_start).count();
    stopping = true;
    io.stop();
  }
};

// Every till holds two sockets (its POS and its pad connection): the soft open-file limit goes
// up to the hard one, and a run the hard one cannot hold is refused before it starts rather
// than failing tills one by one at connect time.
status check_open_files(std::size_t tills) {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return {};
  if (r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &r) != 0) ::getrlimit(RLIMIT_NOFILE, &r);
  }
  constexpr std::uint64_t own_files = 64;  // event loop, timers, key and card files, history
  const std::uint64_t limit = r.rlim_cur;
  const std::uint64_t need = std::uint64_t{tills} * 2 + own_files;
  if (r.rlim_cur == RLIM_INFINITY || need <= limit) return {};
  return make_error("loadgen.bad_option",
                    fmt::format("--tills {} needs {} open files, the limit here is {}: at most {} tills "
                                "(raise it: ulimit -Hn and -n, or LimitNOFILE)",
                                tills, need, limit, limit > own_files ? (limit - own_files) / 2 : 0));
}

// A till's or pad's TLS client context: its certificate files in `dir` when tools/pos-certs or
// tools/pad-certs made them, else a certificate issued now by the directory's CA (ca.key;
// dev_certs.hpp), the CA opened at the first such till.
result<std::shared_ptr<const tls_context>> client_tls(const std::filesystem::path& dir,
                                                      const std::string& name,
                                                      std::shared_ptr<const dev_ca>& ca) {
  const auto cert = dir / (name + ".pem");
  std::error_code ec;
  if (std::filesystem::exists(cert, ec) || !std::filesystem::exists(dir / "ca.key", ec))
    return tls_context::client(dir / "ca.pem", cert, dir / (name + ".key"));
  if (!ca) {
    auto opened = dev_ca::open(dir);
    if (!opened) return opened.err();
    ca = std::move(*opened);
  }
  auto issued = ca->issue(name);
  if (!issued) return issued.err();
  return tls_context::client_pem(dir / "ca.pem", issued->cert_pem, issued->key_pem);
}

}  // namespace

result<summary> run(const options& opt) {
  if (opt.tills == 0) return make_error("loadgen.bad_option", "--tills must be at least 1");
  if (opt.mix.empty()) return make_error("loadgen.bad_option", "empty mix");
  if (auto st = check_open_files(opt.tills); !st) return st.err();
  auto e = std::make_unique<engine>(opt);
  auto cards = load_cards(opt.cards_dir);
  if (!cards) return cards.err();
  e->cards = std::move(*cards);
  auto factory = pad_key_factory::open(opt.keys_dir);
  if (!factory) return factory.err();
  std::shared_ptr<const dev_ca> pad_ca, pos_ca;  // opened when a certificate file is missing
  for (std::size_t i = 0; i < opt.tills; ++i) {
    auto t = std::make_unique<till>(e->io);
    t->index = i;
    t->ids = ids_of(i);
    t->local = e->source_address(i);
    auto keys = factory->keys_for(i);
    if (!keys) return keys.err();
    t->keys = std::move(*keys);
    padsim::pad_identity id;
    id.pad_id = t->ids.pad_id;
    id.serial = t->ids.serial;
    id.model = "eft-loadgen";
    id.capabilities = {"display", "magstripe",   "keypad", "beep", "leds",
                       "chip",    "contactless", "pin",    "p2pe"};
    id.ksns = t->keys.ksns();
    id.dukpt_counters = t->keys.counters();
    t->session = std::make_unique<padsim::pad_session>(std::move(id), t->device, t->device, t->device);
    t->session->set_keys(&t->keys);
    if (!opt.pad_tls_dir.empty()) {
      auto ctx = client_tls(opt.pad_tls_dir, t->ids.serial, pad_ca);
      if (!ctx) return ctx.err();
      t->pad_tls = std::move(*ctx);
    }
    if (!opt.pos_tls_dir.empty()) {
      auto ctx = client_tls(opt.pos_tls_dir, t->ids.till_id, pos_ca);
      if (!ctx) return ctx.err();
      t->pos_tls = std::move(*ctx);
    }
    e->tills.push_back(std::move(t));
  }
  e->sum.tills = opt.tills;
  if (!opt.history_file.empty()) {
    e->history = std::fopen(opt.history_file.c_str(), "w");
    if (!e->history) return make_error("loadgen.history_io", "cannot write " + opt.history_file.string());
    // A line at a time: the checkers read the history of a run that was stopped or killed, and
    // tests wait on its lines while it runs.
    std::setvbuf(e->history, nullptr, _IOLBF, 0);
  }
  asio::co_spawn(e->io, e->control(), [](std::exception_ptr ex) {
    if (!ex) return;
    try {
      std::rethrow_exception(ex);
    } catch (const std::exception& x) {
      spdlog::critical("loadgen: internal failure: {}", x.what());
    }
  });
  e->io.run();
  if (e->history) std::fclose(e->history);
  // Closing every socket before the engine goes: the coroutines still suspended on them are
  // destroyed with the io_context.
  summary out = std::move(e->sum);
  return out;
}

}  // namespace eftd::loadgen
