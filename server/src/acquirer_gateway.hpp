// What the engine asks of an acquirer, in business terms; the gateway turns it into ISO 8583
// (acquirers/ dialect tables) and back. Keeping ISO details here lets the engine read like
// the steps of a sale, and lets other dialects slot in without touching the flow.
#pragma once

#include <boost/asio.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "context.hpp"
#include "eftd/core/card.hpp"

namespace eftd::acq {
class message;
}

namespace eftd::server {

struct acquirer_request {
  std::string acquirer;          // config name
  std::string terminal_id;       // field 41
  std::string card_acceptor_id;  // field 42
  std::string mti = "0200";
  std::string processing_code = "000000";  // field 3: purchase from default account
  std::string pos_entry_mode = "901";      // field 22
  std::uint32_t stan = 0;                  // field 11
  std::int64_t at_ms = 0;                  // fields 7 (UTC) and 12/13 (local) derive from this
  std::string rrn;                         // field 37
  std::int64_t amount_minor = 0;           // field 4
  std::uint16_t currency_numeric = 0;      // field 49
  std::string pos_condition_code = "00";   // field 25: 00 normal presentment, 06 pre-authorisation
  // Follow-ups of a pre-authorisation (incremental 0100, completion 0220): the request they
  // refer to, sent as field 90 (original data elements) with its auth code in field 38.
  struct original_ref {
    std::string mti;
    std::uint32_t stan = 0;
    std::int64_t at_ms = 0;
    std::string auth_code;
  };
  std::optional<original_ref> original;
  // Chip: field 55 (BER-TLV from the EMV kernel: never 57, 5A or 5F20) and field 23 (5F34).
  bytes icc_data;
  std::string card_sequence;  // 3 digits, "" when the card has none
  // Field 52: the online PIN as ISO 9564 format 0 under the acquirer's ZPK (never the pad's
  // DUKPT block); empty: no PIN. Reversals never carry it.
  bytes pin_block;
};

struct acquirer_answer {
  std::string response_code;            // field 39
  std::string auth_code;                // field 38
  std::string rrn;                      // field 37
  std::optional<std::int64_t> balance;  // field 54, amount type 02 (available balance), if sent
  std::optional<std::int64_t> amount;   // field 4 of the response: the approved amount on a partial approval
  bytes icc_data;                       // field 55 of the response: issuer data (91, 71/72), raw TLV
};

// Field 13+12 (MMDDhhmmss, local time): the journal's local_datetime for a request.
std::string local_datetime_of(std::int64_t at_ms);
// A retrieval reference number (field 37): YDDDhh + STAN, 12 digits.
std::string make_rrn(std::int64_t at_ms, std::uint32_t stan);

// Sends a financial request (0200) with the card's track 2 and waits for the answer.
// Errors: acq.connect_failed, acq.timeout, acq.disconnected, acq.decode_error, acq.unknown_acquirer.
boost::asio::awaitable<result<acquirer_answer>> send_financial(server_context& ctx,
                                                               const acquirer_request& req,
                                                               const eftd::track2& card);

// Sends a request that names an earlier authorisation instead of carrying card data: an
// incremental authorisation (0100) or a completion advice (0220, repeats 0221 keep the STAN
// and transmission time of the first). `req.original` must be set.
boost::asio::awaitable<result<acquirer_answer>> send_follow_up(server_context& ctx,
                                                               const acquirer_request& req);

// Sends the advice of a sale the card approved offline (0220, repeats 0221 with the STAN and
// transmission time of the first): the card in fields 2 and 14 (never the track), 23 and 55
// from `req`, 38 and 39 "Y1" (approved offline by the card). Errors as send_financial.
boost::asio::awaitable<result<acquirer_answer>> send_offline_advice(server_context& ctx,
                                                                    const acquirer_request& req,
                                                                    const eftd::pan& card_pan,
                                                                    const std::string& expiry_yymm);

// Sends a reversal for `original`, carrying its data elements in field 90: `mti` is 0400 the
// first time and 0401 for a repeat, which keeps the STAN and transmission time (`at_ms`) of
// the first.
boost::asio::awaitable<result<acquirer_answer>> send_reversal(server_context& ctx,
                                                              const acquirer_request& original,
                                                              std::uint32_t reversal_stan, std::string mti,
                                                              std::int64_t at_ms);

// End of day (settlement.cpp builds its 0500 / 0320 itself): sends `m` on the acquirer's link
// and reads the answer like any other. Same errors as send_financial.
boost::asio::awaitable<result<acquirer_answer>> send_message(server_context& ctx, const std::string& acquirer,
                                                             acq::message m);
// Field 7 (MMDDhhmmss, UTC) of a request sent at `at_ms`.
std::string transmission_datetime_of(std::int64_t at_ms);
// Field 90 naming an earlier request of `acquirer` (MTI, STAN, its field 7, institutions).
std::string original_data_elements_of(server_context& ctx, const std::string& acquirer, std::string_view mti,
                                      std::uint32_t stan, std::int64_t at_ms);

// Start-up check of what core's config parser cannot know (core does not link acquirers/):
// every acquirer's dialect is a known dialect, its framing parses and its TLS files load. "config.invalid",
// one line per problem naming the key ("acquirers[1].dialect: unknown dialect 'x' (known: ...)").
status check_acquirers(const config::server_config& cfg);

// Creates one link per configured acquirer (connecting lazily), with its framing, TPDU,
// sign-on, echo interval, reconnect backoff, its endpoints (host:port then extra_links, used
// primary first: see eftd/acq/link.hpp) and TLS. An acquirer whose link cannot be created is
// logged and left without a link (its sales fail as acq.unknown_acquirer); call
// check_acquirers() first to refuse such a configuration at start-up.
void create_links(server_context& ctx);
// Drops every acquirer connection; requests in flight fail with acq.disconnected.
void close_links(server_context& ctx);

}  // namespace eftd::server
