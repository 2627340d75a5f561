// Error codes of the POS protocol: the "code" of an error message on the wire and the
// eftd::error::code returned by the codec and the client library. Stable: POS software
// and tests switch on them. Documented in pos-protocol/PROTOCOL.md ("Error codes").
#pragma once

#include <string_view>

namespace eftd::pos::codes {

// --- framing and decoding (codec; the server answers with these too)
inline constexpr std::string_view bad_json = "pos.bad_json";          // line is not one JSON object
inline constexpr std::string_view unknown_type = "pos.unknown_type";  // "type" not known
inline constexpr std::string_view missing_field =
    "pos.missing_field";  // required field absent (message names it)
inline constexpr std::string_view bad_field =
    "pos.bad_field";  // field of the wrong JSON type / range (named)
inline constexpr std::string_view frame_too_large =
    "pos.frame_too_large";  // line over 64 KiB; connection closed
inline constexpr std::string_view unsupported_version =
    "pos.unsupported_version";  // "v" / login.version not spoken

// A message that makes no sense in this direction or state (a POS sending a server-to-POS
// type; the client API called with a non-transaction message).
inline constexpr std::string_view unexpected = "pos.unexpected";

// --- client library only (never sent on the wire)
inline constexpr std::string_view disconnected = "pos.disconnected";  // connection lost / refused
inline constexpr std::string_view timeout = "pos.timeout";  // no message within the inactivity timeout
// A message with a lower fencing epoch than one already seen (client_options::min_epoch): it
// comes from a deposed node of a hot-standby pair; the connection is closed, go to the other.
inline constexpr std::string_view stale_epoch = "pos.stale_epoch";

// --- session
inline constexpr std::string_view not_logged_in = "not_logged_in";          // request before login
inline constexpr std::string_view already_logged_in = "already_logged_in";  // second login on a connection
inline constexpr std::string_view unknown_till = "unknown_till";            // till_id not configured
inline constexpr std::string_view till_in_use = "till_in_use";  // till logged in on another connection
inline constexpr std::string_view not_active = "not_active";    // standby server; see error.active_server
inline constexpr std::string_view till_not_authorized =
    "till_not_authorized";  // TLS: the client certificate does not name this till
inline constexpr std::string_view too_many_connections =
    "too_many_connections";  // connection refused by the server's limits; closed
inline constexpr std::string_view login_timeout = "login_timeout";  // no login soon after connecting; closed
inline constexpr std::string_view frame_timeout =
    "frame_timeout";  // a started line not completed in time (slowloris); closed

// --- transactions
inline constexpr std::string_view busy = "busy";                    // one transaction per till at a time
inline constexpr std::string_view not_supported = "not_supported";  // known message type, not served (yet)
inline constexpr std::string_view invalid_amount = "invalid_amount";
inline constexpr std::string_view invalid_currency = "invalid_currency";
inline constexpr std::string_view duplicate_order =
    "duplicate_order";                                          // same order_no, different request data
inline constexpr std::string_view in_progress = "in_progress";  // re-sent request, order still running
inline constexpr std::string_view unknown_order = "unknown_order";
inline constexpr std::string_view unknown_prompt = "unknown_prompt";    // answer to a prompt that is not open
inline constexpr std::string_view pad_unavailable = "pad_unavailable";  // till's PIN pad not connected
inline constexpr std::string_view internal = "internal";

}  // namespace eftd::pos::codes
