#include "eftd/journal/replica_codec.hpp"

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace eftd::journal {

namespace {

constexpr std::array<std::uint8_t, 4> magic{'E', 'J', 'B', '1'};
constexpr std::size_t record_header_size = 5;  // u8 tag + u32 length

// --- the format as data: each record's fields, in declaration order -----------------------
//
// One table drives both directions, so the encoder and the decoder cannot disagree: for each
// record type its name and a tuple of (field name, pointer to member).
template <class C, class M>
struct field_spec {
  std::string_view name;
  M C::*member;
};

template <class C, class M>
constexpr field_spec<C, M> member(std::string_view name, M C::*m) {
  return {name, m};
}

template <class T>
struct layout;  // a record type without a layout does not compile

template <>
struct layout<order_created> {
  static constexpr std::string_view name = "order_created";
  static constexpr std::tuple fields{member("order_id", &order_created::order_id),
                                     member("merchant_id", &order_created::merchant_id),
                                     member("store_id", &order_created::store_id),
                                     member("till_id", &order_created::till_id),
                                     member("order_no", &order_created::order_no),
                                     member("business_date", &order_created::business_date),
                                     member("kind", &order_created::kind),
                                     member("amount_minor", &order_created::amount_minor),
                                     member("currency", &order_created::currency),
                                     member("state", &order_created::state),
                                     member("created_ms", &order_created::created_ms)};
};

template <>
struct layout<order_updated> {
  static constexpr std::string_view name = "order_updated";
  static constexpr std::tuple fields{member("order_id", &order_updated::order_id),
                                     member("expect_state", &order_updated::expect_state),
                                     member("state", &order_updated::state),
                                     member("result_code", &order_updated::result_code),
                                     member("reason_cashier", &order_updated::reason_cashier),
                                     member("reason_customer", &order_updated::reason_customer),
                                     member("approved_amount_minor", &order_updated::approved_amount_minor),
                                     member("updated_ms", &order_updated::updated_ms)};
};

template <>
struct layout<operation_created> {
  static constexpr std::string_view name = "operation_created";
  static constexpr std::tuple fields{member("op_id", &operation_created::op_id),
                                     member("order_id", &operation_created::order_id),
                                     member("parent_op_id", &operation_created::parent_op_id),
                                     member("kind", &operation_created::kind),
                                     member("state", &operation_created::state),
                                     member("amount_minor", &operation_created::amount_minor),
                                     member("currency", &operation_created::currency),
                                     member("entry_mode", &operation_created::entry_mode),
                                     member("scheme", &operation_created::scheme),
                                     member("pan", &operation_created::pan),
                                     member("created_ms", &operation_created::created_ms)};
};

template <>
struct layout<operation_updated> {
  static constexpr std::string_view name = "operation_updated";
  static constexpr std::tuple fields{member("op_id", &operation_updated::op_id),
                                     member("expect_state", &operation_updated::expect_state),
                                     member("state", &operation_updated::state),
                                     member("entry_mode", &operation_updated::entry_mode),
                                     member("scheme", &operation_updated::scheme),
                                     member("pan", &operation_updated::pan),
                                     member("auth_code", &operation_updated::auth_code),
                                     member("response_code", &operation_updated::response_code),
                                     member("result_code", &operation_updated::result_code),
                                     member("emv_data", &operation_updated::emv_data),
                                     member("updated_ms", &operation_updated::updated_ms)};
};

template <>
struct layout<acquirer_message_written> {
  static constexpr std::string_view name = "acquirer_message_written";
  static constexpr std::tuple fields{member("msg_id", &acquirer_message_written::msg_id),
                                     member("op_id", &acquirer_message_written::op_id),
                                     member("original_msg_id", &acquirer_message_written::original_msg_id),
                                     member("acquirer", &acquirer_message_written::acquirer),
                                     member("terminal_id", &acquirer_message_written::terminal_id),
                                     member("mti", &acquirer_message_written::mti),
                                     member("stan", &acquirer_message_written::stan),
                                     member("local_datetime", &acquirer_message_written::local_datetime),
                                     member("rrn", &acquirer_message_written::rrn),
                                     member("amount_minor", &acquirer_message_written::amount_minor),
                                     member("currency", &acquirer_message_written::currency),
                                     member("state", &acquirer_message_written::state),
                                     member("created_ms", &acquirer_message_written::created_ms),
                                     member("next_attempt_ms", &acquirer_message_written::next_attempt_ms),
                                     member("icc_data", &acquirer_message_written::icc_data),
                                     member("card_ciphertext", &acquirer_message_written::card_ciphertext)};
};

template <>
struct layout<acquirer_message_updated> {
  static constexpr std::string_view name = "acquirer_message_updated";
  static constexpr std::tuple fields{member("msg_id", &acquirer_message_updated::msg_id),
                                     member("expect_state", &acquirer_message_updated::expect_state),
                                     member("state", &acquirer_message_updated::state),
                                     member("rrn", &acquirer_message_updated::rrn),
                                     member("response_code", &acquirer_message_updated::response_code),
                                     member("auth_code", &acquirer_message_updated::auth_code),
                                     member("attempts", &acquirer_message_updated::attempts),
                                     member("next_attempt_ms", &acquirer_message_updated::next_attempt_ms),
                                     member("last_error", &acquirer_message_updated::last_error),
                                     member("updated_ms", &acquirer_message_updated::updated_ms)};
};

template <>
struct layout<event_appended> {
  static constexpr std::string_view name = "event_appended";
  static constexpr std::tuple fields{
      member("order_id", &event_appended::order_id), member("op_id", &event_appended::op_id),
      member("at_ms", &event_appended::at_ms),       member("actor", &event_appended::actor),
      member("kind", &event_appended::kind),         member("reason", &event_appended::reason),
      member("detail", &event_appended::detail)};
};

template <>
struct layout<counter_set> {
  static constexpr std::string_view name = "counter_set";
  static constexpr std::tuple fields{member("name", &counter_set::name),
                                     member("value", &counter_set::value)};
};

template <>
struct layout<pad_health_set> {
  static constexpr std::string_view name = "pad_health_set";
  static constexpr std::tuple fields{member("pad_id", &pad_health_set::pad_id),
                                     member("state", &pad_health_set::state),
                                     member("serial", &pad_health_set::serial),
                                     member("model", &pad_health_set::model),
                                     member("firmware", &pad_health_set::firmware),
                                     member("peer", &pad_health_set::peer),
                                     member("node", &pad_health_set::node),
                                     member("connected_ms", &pad_health_set::connected_ms),
                                     member("last_seen_ms", &pad_health_set::last_seen_ms),
                                     member("rtt_ms", &pad_health_set::rtt_ms),
                                     member("missed_pings", &pad_health_set::missed_pings),
                                     member("dukpt", &pad_health_set::dukpt),
                                     member("updated_ms", &pad_health_set::updated_ms)};
};

template <>
struct layout<settlement_batch_written> {
  static constexpr std::string_view name = "settlement_batch_written";
  static constexpr std::tuple fields{member("batch_id", &settlement_batch_written::batch_id),
                                     member("acquirer", &settlement_batch_written::acquirer),
                                     member("terminal_id", &settlement_batch_written::terminal_id),
                                     member("batch_no", &settlement_batch_written::batch_no),
                                     member("business_date", &settlement_batch_written::business_date),
                                     member("card_acceptor_id", &settlement_batch_written::card_acceptor_id),
                                     member("state", &settlement_batch_written::state),
                                     member("totals", &settlement_batch_written::totals),
                                     member("in_doubt", &settlement_batch_written::in_doubt),
                                     member("created_ms", &settlement_batch_written::created_ms)};
};

template <>
struct layout<settlement_batch_updated> {
  static constexpr std::string_view name = "settlement_batch_updated";
  static constexpr std::tuple fields{member("batch_id", &settlement_batch_updated::batch_id),
                                     member("expect_state", &settlement_batch_updated::expect_state),
                                     member("state", &settlement_batch_updated::state),
                                     member("response_code", &settlement_batch_updated::response_code),
                                     member("uploads_total", &settlement_batch_updated::uploads_total),
                                     member("uploads_done", &settlement_batch_updated::uploads_done),
                                     member("totals", &settlement_batch_updated::totals),
                                     member("in_doubt", &settlement_batch_updated::in_doubt),
                                     member("updated_ms", &settlement_batch_updated::updated_ms)};
};

template <>
struct layout<settlement_step_written> {
  static constexpr std::string_view name = "settlement_step_written";
  static constexpr std::tuple fields{member("step_id", &settlement_step_written::step_id),
                                     member("batch_id", &settlement_step_written::batch_id),
                                     member("seq", &settlement_step_written::seq),
                                     member("kind", &settlement_step_written::kind),
                                     member("mti", &settlement_step_written::mti),
                                     member("processing_code", &settlement_step_written::processing_code),
                                     member("stan", &settlement_step_written::stan),
                                     member("at_ms", &settlement_step_written::at_ms),
                                     member("subject_msg_id", &settlement_step_written::subject_msg_id),
                                     member("state", &settlement_step_written::state),
                                     member("created_ms", &settlement_step_written::created_ms)};
};

template <>
struct layout<settlement_step_updated> {
  static constexpr std::string_view name = "settlement_step_updated";
  static constexpr std::tuple fields{member("step_id", &settlement_step_updated::step_id),
                                     member("expect_state", &settlement_step_updated::expect_state),
                                     member("state", &settlement_step_updated::state),
                                     member("response_code", &settlement_step_updated::response_code),
                                     member("updated_ms", &settlement_step_updated::updated_ms)};
};

template <>
struct layout<audit_appended> {
  static constexpr std::string_view name = "audit_appended";
  static constexpr std::tuple fields{
      member("at_ms", &audit_appended::at_ms),     member("actor", &audit_appended::actor),
      member("source", &audit_appended::source),   member("action", &audit_appended::action),
      member("subject", &audit_appended::subject), member("detail", &audit_appended::detail),
      member("outcome", &audit_appended::outcome)};
};

template <>
struct layout<batch_still_open> {
  static constexpr std::string_view name = "batch_still_open";
  static constexpr std::tuple fields{member("acquirer", &batch_still_open::acquirer),
                                     member("terminal_id", &batch_still_open::terminal_id),
                                     member("batch_no", &batch_still_open::batch_no)};
};

template <>
struct layout<case_resolved> {
  static constexpr std::string_view name = "case_resolved";
  static constexpr std::tuple fields{
      member("case_kind", &case_resolved::case_kind), member("subject_id", &case_resolved::subject_id),
      member("resolved_ms", &case_resolved::resolved_ms), member("actor", &case_resolved::actor),
      member("note", &case_resolved::note)};
};

template <>
struct layout<notification_updated> {
  static constexpr std::string_view name = "notification_updated";
  static constexpr std::tuple fields{member("notification_id", &notification_updated::notification_id),
                                     member("expect_state", &notification_updated::expect_state),
                                     member("state", &notification_updated::state),
                                     member("attempts", &notification_updated::attempts),
                                     member("next_attempt_ms", &notification_updated::next_attempt_ms),
                                     member("expires_ms", &notification_updated::expires_ms),
                                     member("last_error", &notification_updated::last_error),
                                     member("delivered_ms", &notification_updated::delivered_ms),
                                     member("updated_ms", &notification_updated::updated_ms)};
};

template <>
struct layout<notification_created> {
  static constexpr std::string_view name = "notification_created";
  static constexpr std::tuple fields{member("notification_id", &notification_created::notification_id),
                                     member("order_id", &notification_created::order_id),
                                     member("event", &notification_created::event),
                                     member("order_state", &notification_created::order_state),
                                     member("payload", &notification_created::payload),
                                     member("created_ms", &notification_created::created_ms),
                                     member("state", &notification_created::state),
                                     member("attempts", &notification_created::attempts),
                                     member("next_attempt_ms", &notification_created::next_attempt_ms),
                                     member("expires_ms", &notification_created::expires_ms),
                                     member("last_error", &notification_created::last_error),
                                     member("delivered_ms", &notification_created::delivered_ms),
                                     member("updated_ms", &notification_created::updated_ms),
                                     member("endpoint", &notification_created::endpoint)};
};

template <>
struct layout<shared_file_set> {
  static constexpr std::string_view name = "shared_file_set";
  static constexpr std::tuple fields{member("name", &shared_file_set::name),
                                     member("content", &shared_file_set::content),
                                     member("sha256", &shared_file_set::sha256),
                                     member("origin", &shared_file_set::origin),
                                     member("set_ms", &shared_file_set::set_ms)};
};

// A member added to a record must be added to its layout: count the aggregate's members (the
// most initializers a braced init takes) and compare with the fields the layout visits.
struct any_member {
  template <class U>
  operator U() const {  // NOLINT(google-explicit-constructor): only ever used unevaluated
    return U{};
  }
};

template <class T, class... A>
constexpr std::size_t member_count() {
  if constexpr (requires { T{A{}..., any_member{}}; })
    return member_count<T, A..., any_member>();
  else
    return sizeof...(A);
}

template <class T>
constexpr std::size_t layout_field_count() {
  return std::tuple_size_v<std::remove_const_t<decltype(layout<T>::fields)>>;
}

// Calls f(name, member) for every field of `r` (a record or a const record) in order.
template <class R, class F>
void for_each_field(R& r, F& f) {
  std::apply([&](const auto&... spec) { (f(spec.name, r.*(spec.member)), ...); },
             layout<std::remove_const_t<R>>::fields);
}

template <std::size_t... I>
constexpr bool layouts_complete(std::index_sequence<I...>) {
  return ((layout_field_count<std::variant_alternative_t<I, record>>() ==
           member_count<std::variant_alternative_t<I, record>>()) &&
          ...);
}
static_assert(layouts_complete(std::make_index_sequence<std::variant_size_v<record>>{}),
              "a journal record has a member its replica layout does not list");
static_assert(member_count<stored_pan>() == 3 && member_count<settlement_totals>() == 8,
              "stored_pan or settlement_totals changed: update put()/get() below");

// Explicit wire values, independent of the enum's order.
constexpr std::array<std::pair<actor, std::uint8_t>, 5> actor_codes{{
    {actor::pos, 0},
    {actor::pad, 1},
    {actor::acquirer, 2},
    {actor::operator_, 3},
    {actor::server, 4},
}};

// --- encoding -----------------------------------------------------------------------------

class encoder {
 public:
  explicit encoder(bytes& out) : out_(out) {}

  template <class V>
  void operator()(std::string_view /*name*/, const V& v) {
    put(v);
  }

  void u8(std::uint8_t v) { out_.push_back(v); }
  void u32(std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out_.push_back(static_cast<std::uint8_t>(v >> shift));
  }
  void u64(std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out_.push_back(static_cast<std::uint8_t>(v >> shift));
  }
  // Writes a u32 placeholder; patch_u32() fills it once the length is known.
  std::size_t reserve_u32() {
    const std::size_t at = out_.size();
    u32(0);
    return at;
  }
  void patch_u32(std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
      out_[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
  }
  std::size_t size() const { return out_.size(); }

 private:
  void put(const std::string& v) {
    u32(static_cast<std::uint32_t>(v.size()));
    out_.insert(out_.end(), v.begin(), v.end());
  }
  void put(const bytes& v) {
    u32(static_cast<std::uint32_t>(v.size()));
    out_.insert(out_.end(), v.begin(), v.end());
  }
  void put(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void put(std::uint32_t v) { u32(v); }
  void put(bool v) { u8(v ? 1 : 0); }
  void put(actor a) {
    for (const auto& [value, code] : actor_codes)
      if (value == a) return u8(code);
    u8(actor_codes.back().second);  // unreachable for a valid enum value
  }
  void put(const stored_pan& p) {
    put(p.ciphertext);
    put(p.masked);
    put(p.search_hash);
  }
  void put(const settlement_totals& t) {
    for (auto v : {t.credits, t.credit_reversals, t.debits, t.debit_reversals, t.credit_amount,
                   t.credit_reversal_amount, t.debit_amount, t.debit_reversal_amount})
      put(v);
  }
  template <class V>
  void put(const std::optional<V>& v) {
    u8(v ? 1 : 0);
    if (v) put(*v);
  }

  bytes& out_;
};

template <std::size_t I = 0>
void encode_record(encoder& e, const record& r) {
  if constexpr (I < std::variant_size_v<record>) {
    using T = std::variant_alternative_t<I, record>;
    if (r.index() != I) return encode_record<I + 1>(e, r);
    e.u8(replica_tag<T>::value);
    const std::size_t length_at = e.reserve_u32();
    const std::size_t body_start = e.size();
    for_each_field(std::get<I>(r), e);
    e.patch_u32(length_at, static_cast<std::uint32_t>(e.size() - body_start));
  }
}

// --- decoding -----------------------------------------------------------------------------

// Reads one record body. The first problem stops it; what() and field() say what it was.
// Never keeps or reports a value it read.
class body_reader {
 public:
  explicit body_reader(byte_view body) : in_(body) {}

  template <class V>
  void operator()(std::string_view name, V& v) {
    if (failed()) return;
    field_ = name;
    get(v);
  }

  bool failed() const { return !what_.empty(); }
  std::string_view what() const { return what_; }
  std::string field() const {
    std::string f(field_);
    if (!sub_.empty()) f.append(".").append(sub_);
    return f;
  }
  std::size_t left() const { return in_.size() - pos_; }

 private:
  bool fail(std::string_view what) {
    if (!failed()) what_ = what;
    return false;
  }
  bool need(std::size_t n) { return left() >= n || fail("truncated"); }

  bool u8(std::uint8_t& v) {
    if (!need(1)) return false;
    v = in_[pos_++];
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (!need(4)) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | in_[pos_++];
    return true;
  }
  bool u64(std::uint64_t& v) {
    if (!need(8)) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | in_[pos_++];
    return true;
  }
  // A length-prefixed run of bytes: the limit first, so a huge length is named as such.
  bool run(byte_view& v) {
    std::uint32_t n = 0;
    if (!u32(n)) return false;
    if (n > max_replica_string_size) return fail("length larger than 16 MiB");
    if (n > left()) return fail("length past the end of the record");
    v = in_.subspan(pos_, n);
    pos_ += n;
    return true;
  }

  bool get(std::string& v) {
    byte_view r;
    if (!run(r)) return false;
    v.assign(reinterpret_cast<const char*>(r.data()), r.size());
    return true;
  }
  bool get(bytes& v) {
    byte_view r;
    if (!run(r)) return false;
    v.assign(r.begin(), r.end());
    return true;
  }
  bool get(std::int64_t& v) {
    std::uint64_t u = 0;
    if (!u64(u)) return false;
    v = static_cast<std::int64_t>(u);  // two's complement (C++20)
    return true;
  }
  bool get(std::uint32_t& v) { return u32(v); }
  bool get(bool& v) {
    std::uint8_t b = 0;
    if (!u8(b)) return false;
    if (b > 1) return fail("bad boolean byte");
    v = b == 1;
    return true;
  }
  bool get(actor& a) {
    std::uint8_t b = 0;
    if (!u8(b)) return false;
    for (const auto& [value, code] : actor_codes) {
      if (code == b) {
        a = value;
        return true;
      }
    }
    return fail("unknown actor code");
  }
  bool get(stored_pan& p) {
    sub_ = "ciphertext";
    if (!get(p.ciphertext)) return false;
    sub_ = "masked";
    if (!get(p.masked)) return false;
    sub_ = "search_hash";
    if (!get(p.search_hash)) return false;
    sub_ = {};
    return true;
  }
  bool get(settlement_totals& t) {
    for (auto* v : {&t.credits, &t.credit_reversals, &t.debits, &t.debit_reversals, &t.credit_amount,
                    &t.credit_reversal_amount, &t.debit_amount, &t.debit_reversal_amount})
      if (!get(*v)) return false;
    return true;
  }
  template <class V>
  bool get(std::optional<V>& v) {
    std::uint8_t present = 0;
    if (!u8(present)) return false;
    if (present > 1) return fail("bad presence byte");
    if (present == 0) {
      v.reset();
      return true;
    }
    return get(v.emplace());
  }

  byte_view in_;
  std::size_t pos_ = 0;
  std::string_view field_;
  std::string_view sub_;
  std::string_view what_;
};

error bad_replica(std::string message) {
  return make_error("journal.bad_replica", std::move(message));
}

std::string record_prefix(std::size_t index) {
  return "record " + std::to_string(index);
}

template <std::size_t... I>
constexpr std::array<std::pair<std::uint8_t, std::string_view>, sizeof...(I)> tag_names(
    std::index_sequence<I...>) {
  return {{{replica_tag<std::variant_alternative_t<I, record>>::value,
            layout<std::variant_alternative_t<I, record>>::name}...}};
}
constexpr auto tag_name_table = tag_names(std::make_index_sequence<std::variant_size_v<record>>{});

std::optional<std::string_view> name_of_tag(std::uint8_t tag) {
  for (const auto& [t, name] : tag_name_table)
    if (t == tag) return name;
  return std::nullopt;
}

// Decodes a body of the type whose tag is `tag` (known to exist) into `out`.
template <std::size_t I = 0>
void decode_body(std::uint8_t tag, body_reader& r, record& out) {
  if constexpr (I < std::variant_size_v<record>) {
    using T = std::variant_alternative_t<I, record>;
    if (replica_tag<T>::value != tag) return decode_body<I + 1>(tag, r, out);
    T v{};
    for_each_field(v, r);
    if (!r.failed()) out.emplace<I>(std::move(v));
  }
}

std::uint32_t read_u32(byte_view d, std::size_t at) {
  return (std::uint32_t{d[at]} << 24) | (std::uint32_t{d[at + 1]} << 16) | (std::uint32_t{d[at + 2]} << 8) |
         std::uint32_t{d[at + 3]};
}

}  // namespace

bytes encode_batch(const batch& b) {
  bytes out(magic.begin(), magic.end());
  encoder e(out);
  e.u32(static_cast<std::uint32_t>(b.records.size()));
  for (const auto& r : b.records) encode_record(e, r);
  return out;
}

result<batch> decode_batch(byte_view data) {
  if (data.size() > max_replica_batch_size) return bad_replica("batch larger than 64 MiB");
  for (std::size_t i = 0; i < magic.size() && i < data.size(); ++i)
    if (data[i] != magic[i]) return bad_replica("bad magic: not an EJB1 batch");
  if (data.size() < magic.size() + 4) return bad_replica("batch header truncated");
  const std::uint32_t count = read_u32(data, magic.size());
  std::size_t pos = magic.size() + 4;
  // Every record takes at least its 5-byte header: a larger count cannot be honest.
  if (count > (data.size() - pos) / record_header_size)
    return bad_replica("record count larger than the remaining bytes can hold");

  batch b;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (data.size() - pos < record_header_size) return bad_replica(record_prefix(i) + ": header truncated");
    const std::uint8_t tag = data[pos];
    const std::uint32_t length = read_u32(data, pos + 1);
    pos += record_header_size;
    const auto name = name_of_tag(tag);
    if (!name) return bad_replica(record_prefix(i) + ": unknown tag " + std::to_string(tag));
    const std::string what = record_prefix(i) + " (" + std::string(*name) + ")";
    if (length > data.size() - pos) return bad_replica(what + ": length past the end of the batch");

    body_reader r(data.subspan(pos, length));
    record& out = b.records.emplace_back();
    decode_body(tag, r, out);
    if (r.failed()) return bad_replica(what + ", field " + r.field() + ": " + std::string(r.what()));
    if (r.left() != 0) return bad_replica(what + ": trailing bytes in the body");
    pos += length;
  }
  if (pos != data.size()) return bad_replica("trailing bytes after the last record");
  return b;
}

}  // namespace eftd::journal
