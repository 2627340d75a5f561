#include "acquirer_gateway.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <ctime>

#include "eftd/acq/codec.hpp"
#include "eftd/acq/dialect.hpp"
#include "eftd/acq/framing.hpp"
#include "eftd/acq/link.hpp"
#include "eftd/acq/message.hpp"
#include "ha.hpp"
#include "key_module.hpp"

namespace eftd::server {

namespace asio = boost::asio;

namespace {

std::tm utc_tm(std::int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return tm;
}

std::tm local_tm(std::int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  return tm;
}

// Field 7: transmission date and time, MMDDhhmmss in UTC (ISO 8583:1987).
std::string transmission_datetime(std::int64_t ms) {
  auto tm = utc_tm(ms);
  return fmt::format("{:02}{:02}{:02}{:02}{:02}", tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
}

// Fields every request of a given transaction shares (an original and its reversal alike).
acq::message base_message(server_context& ctx, const acquirer_request& r, std::string mti, std::uint32_t stan,
                          std::int64_t at_ms) {
  acq::message m(std::move(mti));
  const auto* cfg = ctx.cfg().find_acquirer(r.acquirer);
  auto lt = local_tm(at_ms);
  m.set(3, r.processing_code);
  m.set(4, fmt::format("{:012}", r.amount_minor));
  m.set(7, transmission_datetime(at_ms));
  m.set(11, fmt::format("{:06}", stan));
  m.set(12, fmt::format("{:02}{:02}{:02}", lt.tm_hour, lt.tm_min, lt.tm_sec));
  m.set(13, fmt::format("{:02}{:02}", lt.tm_mon + 1, lt.tm_mday));
  m.set(22, r.pos_entry_mode);
  m.set(25, r.pos_condition_code);
  if (cfg) m.set(32, cfg->acquiring_institution_id);
  if (!r.rrn.empty()) m.set(37, r.rrn);
  m.set(41, r.terminal_id);
  m.set(42, r.card_acceptor_id);
  m.set(49, fmt::format("{:03}", r.currency_numeric));
  return m;
}

result<acquirer_answer> read_answer(const acq::message& resp) {
  auto rc = resp.get(39);
  if (!rc || rc->size() != 2) return make_error("acq.decode_error", "response without a valid field 39");
  acquirer_answer a;
  a.response_code = std::string(*rc);
  if (auto ac = resp.get(38)) {
    // Auth codes are 6 characters, space padded; keep the meaningful part.
    std::string s(*ac);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    a.auth_code = s;
  }
  if (auto rrn = resp.get(37)) a.rrn = std::string(*rrn);
  if (auto icc = resp.get(55)) a.icc_data.assign(icc->begin(), icc->end());
  if (auto f4 = resp.get(4); f4 && !f4->empty() && f4->size() <= 12 &&
                             f4->find_first_not_of("0123456789") == std::string_view::npos) {
    std::int64_t v = 0;
    for (char c : *f4) v = v * 10 + (c - '0');
    a.amount = v;
  }
  // Field 54 (1987): repeated 20-character blocks: account type (2), amount type (2),
  // currency (3), sign C/D (1), amount (12). Amount type 02 is the available balance.
  if (auto f54 = resp.get(54)) {
    std::string_view v = *f54;
    for (std::size_t i = 0; i + 20 <= v.size(); i += 20) {
      auto blk = v.substr(i, 20);
      if (blk.substr(2, 2) != "02") continue;
      std::int64_t amount = 0;
      bool digits = true;
      for (char c : blk.substr(8, 12)) {
        if (c < '0' || c > '9') digits = false;
        amount = amount * 10 + (c - '0');
      }
      if (!digits || (blk[7] != 'C' && blk[7] != 'D'))
        return make_error("acq.decode_error", "field 54 malformed");
      a.balance = blk[7] == 'D' ? -amount : amount;
      break;
    }
  }
  return a;
}

asio::awaitable<result<acquirer_answer>> exchange(server_context& ctx, const std::string& acquirer,
                                                  acq::message m) {
  auto it = ctx.links.find(acquirer);
  if (it == ctx.links.end())
    co_return make_error("acq.unknown_acquirer", "no link for acquirer '" + acquirer + "'");
  auto link = it->second;
  // Only the active node with a current lease sends (server/HA.md): a paused old active that
  // wakes up must not reach an acquirer. Refused here means never sent.
  if (ctx.ha) {
    if (auto st = ctx.ha->may_send(); !st) co_return st.err();
  }
  result<acq::message> resp = make_error("acq.disconnected", "no answer");
  const auto started = std::chrono::steady_clock::now();
  try {
    // The link lives on its own strand; the flow resumes on its own executor afterwards.
    resp = co_await asio::co_spawn(ctx.link_strands.at(acquirer), link->request(std::move(m)),
                                   asio::use_awaitable);
  } catch (const std::exception& e) {
    co_return make_error("acq.disconnected", std::string("acquirer link failed: ") + e.what());
  }
  ctx.metrics->observe(stage::acquirer, ms_since(started));
  if (!resp) co_return resp.err();
  co_return read_answer(*resp);
}

}  // namespace

std::string local_datetime_of(std::int64_t at_ms) {
  auto tm = local_tm(at_ms);
  return fmt::format("{:02}{:02}{:02}{:02}{:02}", tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
}

std::string make_rrn(std::int64_t at_ms, std::uint32_t stan) {
  auto tm = local_tm(at_ms);
  return fmt::format("{:01}{:03}{:02}{:06}", (tm.tm_year + 1900) % 10, tm.tm_yday + 1, tm.tm_hour,
                     stan % 1000000);
}

asio::awaitable<result<acquirer_answer>> send_financial(server_context& ctx, const acquirer_request& req,
                                                        const eftd::track2& card) {
  auto m = base_message(ctx, req, req.mti, req.stan, req.at_ms);
  // Field 35 carries the whole track 2 for a swiped card; field 2 is then redundant.
  auto t2 = card.encode_ascii();
  m.set(35, std::string(reinterpret_cast<const char*>(t2.view().data()), t2.size()));
  if (!req.pin_block.empty())
    m.set(52, std::string(reinterpret_cast<const char*>(req.pin_block.data()), req.pin_block.size()));
  if (!req.card_sequence.empty()) m.set(23, req.card_sequence);
  if (!req.icc_data.empty())
    m.set(55, std::string(reinterpret_cast<const char*>(req.icc_data.data()), req.icc_data.size()));
  co_return co_await exchange(ctx, req.acquirer, std::move(m));
}

asio::awaitable<result<acquirer_answer>> send_offline_advice(server_context& ctx, const acquirer_request& req,
                                                             const eftd::pan& card_pan,
                                                             const std::string& expiry_yymm) {
  auto m = base_message(ctx, req, req.mti, req.stan, req.at_ms);
  m.set(2, std::string(card_pan.reveal()));
  m.set(14, expiry_yymm);
  if (!req.card_sequence.empty()) m.set(23, req.card_sequence);
  if (!req.icc_data.empty())
    m.set(55, std::string(reinterpret_cast<const char*>(req.icc_data.data()), req.icc_data.size()));
  m.set(38, fmt::format("{:<6}", "Y1"));
  m.set(39, "Y1");  // the terminal's decision: approved offline
  co_return co_await exchange(ctx, req.acquirer, std::move(m));
}

namespace {

// Field 90 (original data elements, n42): original MTI, STAN, transmission date-time,
// acquiring institution id (11, zero-padded) and forwarding institution id (11 zeros).
std::string original_data_elements(server_context& ctx, const std::string& acquirer, std::string_view mti,
                                   std::uint32_t stan, std::int64_t at_ms) {
  const auto* cfg = ctx.cfg().find_acquirer(acquirer);
  std::string acq_id = cfg ? cfg->acquiring_institution_id : "";
  if (acq_id.size() < 11) acq_id = std::string(11 - acq_id.size(), '0') + acq_id;
  return fmt::format("{}{:06}{}{}{}", mti, stan, transmission_datetime(at_ms), acq_id.substr(0, 11),
                     std::string(11, '0'));
}

}  // namespace

asio::awaitable<result<acquirer_answer>> send_follow_up(server_context& ctx, const acquirer_request& req) {
  if (!req.original) co_return make_error("acq.bad_request", "a follow-up needs its original request");
  auto m = base_message(ctx, req, req.mti, req.stan, req.at_ms);
  const auto& o = *req.original;
  if (!o.auth_code.empty()) m.set(38, fmt::format("{:<6}", o.auth_code.substr(0, 6)));
  if (req.mti.size() == 4 && req.mti[2] == '2') m.set(39, "00");  // an advice: decided online
  m.set(90, original_data_elements(ctx, req.acquirer, o.mti, o.stan, o.at_ms));
  co_return co_await exchange(ctx, req.acquirer, std::move(m));
}

asio::awaitable<result<acquirer_answer>> send_reversal(server_context& ctx, const acquirer_request& original,
                                                       std::uint32_t reversal_stan, std::string mti,
                                                       std::int64_t at_ms) {
  auto m = base_message(ctx, original, std::move(mti), reversal_stan, at_ms);
  m.set(90, original_data_elements(ctx, original.acquirer, original.mti, original.stan, original.at_ms));
  co_return co_await exchange(ctx, original.acquirer, std::move(m));
}

asio::awaitable<result<acquirer_answer>> send_message(server_context& ctx, const std::string& acquirer,
                                                      acq::message m) {
  co_return co_await exchange(ctx, acquirer, std::move(m));
}

std::string transmission_datetime_of(std::int64_t at_ms) {
  return transmission_datetime(at_ms);
}

std::string original_data_elements_of(server_context& ctx, const std::string& acquirer, std::string_view mti,
                                      std::uint32_t stan, std::int64_t at_ms) {
  return original_data_elements(ctx, acquirer, mti, stan, at_ms);
}

namespace {

// An NII written as 4 digits travels as 2 BCD bytes: "0123" -> 0x0123.
std::uint16_t nii_of(const std::string& digits) {
  std::uint16_t v = 0;
  for (char c : digits) v = static_cast<std::uint16_t>((v << 4) | static_cast<std::uint16_t>(c - '0'));
  return v;
}

result<acq::link_config> link_config_of(const config::acquirer& a) {
  acq::link_config lc;
  lc.name = a.name;
  lc.host = a.host;
  lc.port = a.port;
  for (const auto& l : a.extra_links) lc.extra_links.push_back({l.host, l.port});
  if (a.tls.enabled()) {
    lc.tls.ca_file = a.tls.ca_file.string();
    lc.tls.cert_file = a.tls.cert_file.string();
    lc.tls.key_file = a.tls.key_file.string();
    lc.tls.server_name = a.tls.server_name;
  }
  lc.connect_timeout = std::chrono::milliseconds(a.connect_timeout_ms);
  lc.response_timeout = std::chrono::milliseconds(a.response_timeout_ms);
  lc.dialect = a.dialect;
  auto framing = acq::parse_framing(a.framing);
  if (!framing) return framing.err();
  lc.framing = *framing;
  if (lc.framing.tpdu) {
    // A terminal addresses the host's NII and names its own as the source.
    lc.framing.tpdu->destination = nii_of(a.tpdu_destination);
    lc.framing.tpdu->source = nii_of(a.tpdu_source);
  }
  lc.sign_on = a.sign_on;
  lc.echo_interval = std::chrono::milliseconds(a.echo_interval_ms);
  lc.reconnect_backoff_initial = std::chrono::milliseconds(a.reconnect_backoff_ms);
  lc.reconnect_backoff_max = std::chrono::milliseconds(a.reconnect_backoff_max_ms);
  return lc;
}

}  // namespace

status check_acquirers(const config::server_config& cfg) {
  std::string problems;
  const auto add = [&](std::string line) {
    if (!problems.empty()) problems += '\n';
    problems += std::move(line);
  };
  for (std::size_t i = 0; i < cfg.acquirers.size(); ++i) {
    const auto& a = cfg.acquirers[i];
    if (acq::find_dialect(a.dialect) == nullptr) {
      std::string known;
      for (auto n : acq::dialect_names()) known += (known.empty() ? "" : ", ") + std::string(n);
      add(fmt::format("acquirers[{}].dialect: unknown dialect '{}' (known: {})", i, a.dialect, known));
    }
    if (auto f = acq::parse_framing(a.framing); !f)
      add(fmt::format("acquirers[{}].framing: {}", i, f.err().message));
    // TLS files that cannot be loaded would leave the acquirer without a link at run time.
    if (auto lc = link_config_of(a); lc && a.tls.enabled())
      if (auto st = acq::check_tls(*lc); !st) add(fmt::format("acquirers[{}].tls: {}", i, st.err().message));
  }
  if (!problems.empty()) return make_error("config.invalid", problems);
  return {};
}

void create_links(server_context& ctx) {
  if (auto st = check_acquirers(ctx.cfg()); !st) spdlog::error("{}", st.err().message);
  for (const auto& a : ctx.cfg().acquirers) {
    auto lc = link_config_of(a);
    if (!lc) {
      spdlog::error("acquirer {}: {}", a.name, lc.err().message);
      continue;
    }
    if (!a.mak.empty()) {
      if (auto keys = ctx.key_store(); !keys || !keys->enabled()) {
        // key_module::open checks every MAK at start-up, so this is a wiring error: never send
        // unsigned messages to a host that expects MACs.
        spdlog::error("acquirer {}: mak '{}' is configured but no key store is open; no link", a.name, a.mak);
        continue;
      }
      // The link holds the key's name only; the MAK stays inside the module in force.
      lc->mac = [&ctx, name = a.mak](byte_view data) -> result<bytes> {
        auto keys = ctx.key_store();
        if (!keys) return make_error("keys.unavailable", "no key store is open");
        return keys->mac_sign(name, data);
      };
    }
    asio::any_io_executor strand = asio::make_strand(ctx.io);
    auto link = acq::link::create(strand, std::move(*lc));
    if (!link) {
      spdlog::error("acquirer {}: {}", a.name, link.err().message);
      continue;
    }
    ctx.links[a.name] = std::move(*link);
    ctx.link_strands[a.name] = strand;
  }
}

void close_links(server_context& ctx) {
  for (auto& [name, link] : ctx.links) link->close();
}

}  // namespace eftd::server
