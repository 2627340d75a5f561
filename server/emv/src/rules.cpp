#include "eftd/emv/rules.hpp"

#include <algorithm>

namespace eftd::emv {

namespace {

std::optional<unsigned> bcd2(std::uint8_t b) {
  if ((b >> 4) > 9 || (b & 0x0F) > 9) return std::nullopt;
  return (b >> 4) * 10u + (b & 0x0F);
}

std::optional<std::uint32_t> make_date(unsigned yy, unsigned mm, unsigned dd) {
  if (mm < 1 || mm > 12 || dd < 1 || dd > 31) return std::nullopt;
  const unsigned year = yy < 50 ? 2000 + yy : 1900 + yy;
  return year * 10000 + mm * 100 + dd;
}

bool all_of_mask(byte_view a, byte_view b) {
  // True when any bit set in both: the TVR against one action code.
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i)
    if (a[i] & b[i]) return true;
  return false;
}

bool matches(const tvr_bytes& tvr, const bytes& code, std::uint8_t absent_fill) {
  tvr_bytes c{};
  c.fill(absent_fill);
  for (std::size_t i = 0; i < c.size() && i < code.size(); ++i) c[i] = code[i];
  return all_of_mask(tvr, c);
}

bool matches_iac(const tvr_bytes& tvr, const std::optional<bytes>& iac, std::uint8_t absent_fill) {
  if (!iac) {
    tvr_bytes c{};
    c.fill(absent_fill);
    return all_of_mask(tvr, c);
  }
  return matches(tvr, *iac, 0x00);
}

}  // namespace

std::optional<std::uint32_t> date_number(std::string_view yymmdd) {
  if (yymmdd.size() != 6) return std::nullopt;
  unsigned v[3];
  for (int i = 0; i < 3; ++i) {
    const char a = yymmdd[2 * i], b = yymmdd[2 * i + 1];
    if (a < '0' || a > '9' || b < '0' || b > '9') return std::nullopt;
    v[i] = static_cast<unsigned>((a - '0') * 10 + (b - '0'));
  }
  return make_date(v[0], v[1], v[2]);
}

std::optional<std::uint32_t> date_number(byte_view bcd3) {
  if (bcd3.size() != 3) return std::nullopt;
  const auto y = bcd2(bcd3[0]), m = bcd2(bcd3[1]), d = bcd2(bcd3[2]);
  if (!y || !m || !d) return std::nullopt;
  return make_date(*y, *m, *d);
}

result<cvm_list> parse_cvm_list(byte_view list) {
  if (list.size() < 8) return make_error("emv.cvm_list_short", "CVM list shorter than its amounts X and Y");
  if ((list.size() - 8) % 2 != 0) return make_error("emv.cvm_list_odd", "CVM list ends inside a rule");
  if (list.size() == 8) return make_error("emv.cvm_list_empty", "CVM list has no rule");
  cvm_list out;
  out.x = (std::uint32_t{list[0]} << 24) | (std::uint32_t{list[1]} << 16) | (std::uint32_t{list[2]} << 8) |
          list[3];
  out.y = (std::uint32_t{list[4]} << 24) | (std::uint32_t{list[5]} << 16) | (std::uint32_t{list[6]} << 8) |
          list[7];
  for (std::size_t i = 8; i < list.size(); i += 2) out.rules.push_back({list[i], list[i + 1]});
  return out;
}

bool cvm_recognised(std::uint8_t method) {
  return method <= 0x05 || method == cvm::signature || method == cvm::no_cvm;
}

condition_result cvm_condition(const cvm_rule& rule, const cvm_list& list, const cvm_context& ctx) {
  auto yes = [](bool b) { return b ? condition_result::satisfied : condition_result::not_satisfied; };
  switch (rule.condition) {
    case 0x00:
      return condition_result::satisfied;
    case 0x01:
      return yes(ctx.unattended && ctx.cash);
    case 0x02:
      return yes(!ctx.cash && !ctx.cashback);
    case 0x03:
      return yes(ctx.supported[rule.method()]);
    case 0x04:
      return yes(ctx.manual_cash);
    case 0x05:
      return yes(ctx.cashback);
    // X and Y are in the application currency: without the same currency the terminal cannot
    // compare and the rule is skipped (Book 3 10.5).
    case 0x06:
      return yes(ctx.same_currency && ctx.amount < list.x);
    case 0x07:
      return yes(ctx.same_currency && ctx.amount > list.x);
    case 0x08:
      return yes(ctx.same_currency && ctx.amount < list.y);
    case 0x09:
      return yes(ctx.same_currency && ctx.amount > list.y);
    default:
      return condition_result::not_understood;
  }
}

void processing_restrictions(const restriction_inputs& in, tvr_bytes& tvr) {
  if (in.card_app_version && !std::equal(in.card_app_version->begin(), in.card_app_version->end(),
                                         in.terminal_app_version.begin(), in.terminal_app_version.end()))
    set_bit(tvr, tvr::different_versions);

  if (in.auc && in.auc->size() >= 2) {
    const std::uint8_t a1 = (*in.auc)[0], a2 = (*in.auc)[1];
    bool allowed = in.atm ? (a1 & 0x02) != 0 : (a1 & 0x01) != 0;
    if (in.issuer_country && in.issuer_country->size() == 2 && in.terminal_country.size() == 2) {
      const bool domestic = (*in.issuer_country)[0] == in.terminal_country[0] &&
                            (*in.issuer_country)[1] == in.terminal_country[1];
      const bool cash = in.transaction_type == 0x01 || in.transaction_type == 0x17;
      const bool purchase = in.transaction_type == 0x00 || in.transaction_type == 0x09;
      if (cash) allowed = allowed && (a1 & (domestic ? 0x80 : 0x40)) != 0;
      if (purchase) {
        const std::uint8_t need = in.services ? (domestic ? 0x08 : 0x04) : (domestic ? 0x20 : 0x10);
        allowed = allowed && (a1 & need) != 0;
      }
      if (in.cashback || in.transaction_type == 0x09)
        allowed = allowed && (a2 & (domestic ? 0x80 : 0x40)) != 0;
    }
    if (!allowed) set_bit(tvr, tvr::service_not_allowed);
  }

  if (in.effective) {
    const auto eff = date_number(*in.effective);
    if (!eff || *eff > in.today) set_bit(tvr, tvr::not_yet_effective);
  }
  if (in.expiry) {
    const auto exp = date_number(*in.expiry);
    if (!exp || *exp < in.today) set_bit(tvr, tvr::expired);
  }
}

void velocity_check(std::uint8_t lcol, std::uint8_t ucol, std::optional<std::uint16_t> atc,
                    std::optional<std::uint16_t> last_online_atc, tvr_bytes& tvr) {
  if (atc && last_online_atc && *atc > *last_online_atc) {
    const unsigned offline = static_cast<unsigned>(*atc - *last_online_atc);
    if (offline > lcol) set_bit(tvr, tvr::lcol_exceeded);
    if (offline > ucol) set_bit(tvr, tvr::ucol_exceeded);
  } else {
    // Counters unreadable (or not counting up): velocity checking is not possible, so both
    // limits count as exceeded (Book 3 10.6.3).
    set_bit(tvr, tvr::lcol_exceeded);
    set_bit(tvr, tvr::ucol_exceeded);
  }
  if (last_online_atc && *last_online_atc == 0) set_bit(tvr, tvr::new_card);
}

bool random_selection(std::uint64_t amount, std::uint64_t floor_limit, std::uint64_t threshold,
                      unsigned target_percent, unsigned max_percent, unsigned draw) {
  if (target_percent == 0 || amount >= floor_limit) return false;
  if (amount < threshold || threshold >= floor_limit) return draw <= target_percent;
  // Between the threshold and the floor limit the probability rises linearly from the target
  // to the maximum percentage (Book 3 figure 15), so larger amounts go online more often.
  const std::uint64_t span = floor_limit - threshold;
  const unsigned extra = max_percent > target_percent ? max_percent - target_percent : 0;
  const auto ttp = static_cast<unsigned>(target_percent + extra * (amount - threshold) / span);
  return draw <= ttp;
}

online_capability capability_of(std::uint8_t terminal_type) {
  switch (terminal_type & 0x0F) {
    case 1:
    case 4:
      return online_capability::online_only;
    case 3:
    case 6:
      return online_capability::offline_only;
    default:
      return online_capability::offline_with_online;
  }
}

ac_type terminal_action_analysis(const tvr_bytes& tvr, const action_codes& tac,
                                 const issuer_action_codes& iac, online_capability cap) {
  if (matches(tvr, tac.denial, 0x00) || matches_iac(tvr, iac.denial, 0x00)) return ac_type::aac;
  if (cap == online_capability::online_only) return ac_type::arqc;
  if (cap == online_capability::offline_with_online) {
    if (matches(tvr, tac.online, 0x00) || matches_iac(tvr, iac.online, 0xFF)) return ac_type::arqc;
    return ac_type::tc;
  }
  return default_action_analysis(tvr, tac, iac);
}

ac_type default_action_analysis(const tvr_bytes& tvr, const action_codes& tac,
                                const issuer_action_codes& iac) {
  if (matches(tvr, tac.def, 0x00) || matches_iac(tvr, iac.def, 0xFF)) return ac_type::aac;
  return ac_type::tc;
}

}  // namespace eftd::emv
