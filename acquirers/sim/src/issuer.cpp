#include "eftd/acqsim/issuer.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <tuple>

#include "eftd/core/mac.hpp"
#include "eftd/core/tlv.hpp"

namespace eftd::acqsim {

namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

void wipe(std::string& s) {
  secure_wipe(s.data(), s.size());
}

error invalid(std::string_view source, std::size_t entry, std::string_view key, std::string_view why) {
  return make_error("sim.issuer_keys_invalid", fmt::format("{}: issuer[{}].{}: {}", source, entry, key, why));
}

std::optional<emv::cvn> cvn_named(std::string_view s) {
  if (s == "visa10") return emv::cvn::visa10;
  if (s == "visa18") return emv::cvn::visa18;
  if (s == "mc16") return emv::cvn::mc16;
  if (s == "mc20") return emv::cvn::mc20;
  return std::nullopt;
}

bool is_visa(emv::cvn v) {
  return v == emv::cvn::visa10 || v == emv::cvn::visa18;
}

}  // namespace

result<issuer_keys> issuer_keys::parse(std::string_view text, std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    // Location only: the description may quote the text, which holds keys.
    return make_error("sim.issuer_keys_syntax",
                      fmt::format("{}: TOML syntax error at line {}, column {}", source,
                                  e.source().begin.line, e.source().begin.column));
  }
  for (const auto& [k, v] : root) {
    (void)v;
    if (k.str() != "issuer")
      return make_error("sim.issuer_keys_invalid", fmt::format("{}: unknown key '{}'", source, k.str()));
  }
  const toml::array* arr = root["issuer"].as_array();
  if (arr == nullptr || arr->empty())
    return make_error("sim.issuer_keys_invalid", fmt::format("{}: no [[issuer]] entries", source));
  issuer_keys out;
  std::size_t n = 0;
  for (const auto& node : *arr) {
    ++n;
    const toml::table* t = node.as_table();
    if (t == nullptr) return invalid(source, n, "", "must be a table ([[issuer]])");
    for (const auto& [k, v] : *t) {
      (void)v;
      static constexpr std::string_view known[] = {"pan_prefix", "aid",        "mk_ac",
                                                   "mk_smi",     "derivation", "cvn"};
      if (std::find(std::begin(known), std::end(known), k.str()) == std::end(known))
        return invalid(source, n, k.str(), "unknown key");
    }
    issuer_key key;
    if (auto p = t->get_as<std::string>("pan_prefix")) {
      key.pan_prefix = p->get();
      if (!all_digits(key.pan_prefix) || key.pan_prefix.size() > 19)
        return invalid(source, n, "pan_prefix", "must be 1..19 digits");
    }
    if (auto a = t->get_as<std::string>("aid")) {
      auto b = from_hex(a->get());
      if (!b || b->size() < 5 || b->size() > 16) return invalid(source, n, "aid", "must be 5..16 bytes hex");
      key.aid = std::move(*b);
    }
    if (key.pan_prefix.empty() == key.aid.empty())
      return invalid(source, n, "pan_prefix", "give pan_prefix or aid");
    for (auto [name, out_key, required] :
         {std::tuple{"mk_ac", &key.mk_ac, true}, std::tuple{"mk_smi", &key.mk_smi, false}}) {
      const toml::node* v = t->get(name);
      if (v == nullptr) {
        if (required) return invalid(source, n, name, "is required");
        continue;
      }
      const auto* s = v->as_string();
      if (s == nullptr) return invalid(source, n, name, "must be a string of 32 hex digits");
      std::string hex = s->get();
      auto b = from_hex(hex);
      wipe(hex);
      if (!b || b->size() != 16)
        return invalid(source, n, name, "must be 32 hex digits (a double-length key)");
      *out_key = secure_bytes(*b);
      secure_wipe(b->data(), b->size());
    }
    if (const toml::node* d = t->get("derivation")) {
      const auto* s = d->as_string();
      if (s == nullptr || (s->get() != "a" && s->get() != "b"))
        return invalid(source, n, "derivation", "must be a or b");
      key.derivation = s->get() == "a" ? emv::mk_option::a : emv::mk_option::b;
    }
    if (const toml::node* c = t->get("cvn")) {
      const auto* s = c->as_string();
      key.cvn = s ? cvn_named(s->get()) : std::nullopt;
      if (!key.cvn) return invalid(source, n, "cvn", "must be visa10, visa18, mc16 or mc20");
    }
    out.keys_.push_back(std::move(key));
  }
  return out;
}

result<issuer_keys> issuer_keys::load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error("sim.issuer_keys_io", fmt::format("{}: cannot open", file.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto r = parse(text, file.filename().string());
  wipe(text);
  return r;
}

const issuer_key* issuer_keys::find(std::string_view pan, byte_view aid) const {
  for (const auto& k : keys_)
    if (!k.pan_prefix.empty() && pan.substr(0, k.pan_prefix.size()) == k.pan_prefix) return &k;
  for (const auto& k : keys_)
    if (!k.aid.empty() && aid.size() >= k.aid.size() && std::equal(k.aid.begin(), k.aid.end(), aid.begin()))
      return &k;
  return nullptr;
}

std::optional<issuer_script> parse_issuer_script(std::string_view name) {
  if (name == "pin-unblock") return issuer_script::pin_unblock;
  if (name == "app-unblock") return issuer_script::app_unblock;
  if (name == "app-block") return issuer_script::app_block;
  return std::nullopt;
}

arqc_check check_arqc(const issuer_keys& keys, std::string_view pan, std::string_view psn,
                      std::string_view field55) {
  arqc_check c;
  auto objs = tlv_decode(as_bytes(field55));
  if (!objs) {
    c.why = fmt::format("field 55 does not decode ({})", objs.err().code);
    return c;
  }
  auto value = [&](std::uint32_t tag) -> const bytes* {
    const tlv* t = tlv_find(*objs, tag, true);
    return t ? &t->value : nullptr;
  };
  const bytes* ac = value(0x9F26);
  const bytes* cid = value(0x9F27);
  // An ARQC (online request), or a TC (an offline approval's advice): the same MAC over the
  // same data.
  if (ac == nullptr || cid == nullptr || cid->size() != 1 ||
      (((*cid)[0] & 0xC0) != 0x80 && ((*cid)[0] & 0xC0) != 0x40)) {
    c.why = "no ARQC or TC in field 55";
    return c;
  }
  const bytes* aid = value(0x84) ? value(0x84) : value(0x4F);
  const issuer_key* key = keys.find(pan, aid ? byte_view(*aid) : byte_view{});
  if (key == nullptr) {
    c.why = "no issuer key for this card";
    return c;
  }
  c.applies = true;
  const bytes* iad = value(0x9F10);
  std::optional<emv::cvn> cvn = key->cvn;
  if (!cvn && iad != nullptr) cvn = emv::cvn_from_iad(*iad);
  if (!cvn || iad == nullptr) {
    c.why = "arqc mismatch: no 9F10 or unknown CVN";
    return c;
  }
  c.cvn = *cvn;
  const std::size_t need = c.cvn == emv::cvn::visa10 ? 7 : c.cvn == emv::cvn::visa18 ? 1 : 8;
  if (iad->size() < need) {
    c.why = "arqc mismatch: 9F10 too short for its CVN";
    return c;
  }

  // The data the card MACs, in the schemes' order.
  static constexpr std::pair<std::uint32_t, std::size_t> fields[] = {
      {0x9F02, 6}, {0x9F03, 6}, {0x9F1A, 2}, {0x95, 5}, {0x5F2A, 2},
      {0x9A, 3},   {0x9C, 1},   {0x9F37, 4}, {0x82, 2}, {0x9F36, 2}};
  for (const auto& [tag, len] : fields) {
    const bytes* v = value(tag);
    if (v == nullptr || v->size() != len) {
      c.why = fmt::format("arqc mismatch: field 55 lacks {:X} or it has the wrong length", tag);
      return c;
    }
    c.inputs.data.insert(c.inputs.data.end(), v->begin(), v->end());
    if (tag == 0x9F37) c.inputs.un = *v;
    if (tag == 0x9F36) c.inputs.atc = static_cast<std::uint16_t>((*v)[0] << 8 | (*v)[1]);
  }
  if (c.cvn == emv::cvn::visa18)
    c.inputs.iad_or_cvr = *iad;
  else if (c.cvn == emv::cvn::visa10)
    c.inputs.iad_or_cvr.assign(iad->begin() + 3, iad->begin() + 7);
  else
    c.inputs.iad_or_cvr.assign(iad->begin() + 2, iad->begin() + 8);

  // PAN sequence number: field 23 (n3, the last two digits), else 5F34, else 00.
  std::string seq = "00";
  if (psn.size() >= 2 && all_digits(psn)) {
    seq = std::string(psn.substr(psn.size() - 2));
  } else if (const bytes* p = value(0x5F34); p != nullptr && p->size() == 1) {
    seq = fmt::format("{:02X}", (*p)[0]);
  }
  auto mk = emv::derive_icc_mk(key->mk_ac.view(), pan, seq, key->derivation);
  if (!mk) {
    c.why = fmt::format("arqc mismatch: ICC key derivation failed ({})", mk.err().code);
    return c;
  }
  c.icc_mk_ac = std::move(*mk);
  if (!key->mk_smi.empty()) {
    auto smi = emv::derive_icc_mk(key->mk_smi.view(), pan, seq, key->derivation);
    if (smi) c.icc_mk_smi = std::move(*smi);
  }
  auto want = emv::generate_ac(c.cvn, c.icc_mk_ac.view(), c.inputs);
  if (!want) {
    c.why = fmt::format("arqc mismatch: {}", want.err().code);
    return c;
  }
  c.arqc = *ac;
  c.ok = mac_equal(*want, *ac);
  c.why = c.ok ? "arqc verified" : "arqc mismatch";
  return c;
}

result<std::string> issuer_response_field55(const arqc_check& check, std::string_view response_code,
                                            std::span<const issuer_script> scripts) {
  const bool approved = response_code == "00" || response_code == "10" || response_code == "11";
  std::vector<tlv> out;
  if (emv::spec(check.cvn).arpc == emv::arpc_kind::method2_sk) {
    // Card status update: byte 2 bit 8 "issuer approves the online transaction".
    const bytes csu{0x00, static_cast<std::uint8_t>(approved ? 0x80 : 0x00), 0x00, 0x00};
    auto arpc = emv::generate_arpc(check.cvn, check.icc_mk_ac.view(), check.inputs, check.arqc, csu);
    if (!arpc) return arpc.err();
    bytes v = *arpc;
    v.insert(v.end(), csu.begin(), csu.end());
    out.push_back(tlv{0x91, std::move(v), {}});
  } else {
    const bytes arc(response_code.begin(), response_code.end());
    auto arpc = emv::generate_arpc(check.cvn, check.icc_mk_ac.view(), check.inputs, check.arqc, arc);
    if (!arpc) return arpc.err();
    bytes v = *arpc;
    v.insert(v.end(), arc.begin(), arc.end());
    out.push_back(tlv{0x91, std::move(v), {}});
  }

  if (approved && !check.icc_mk_smi.empty()) {
    // Script session key: Visa's SM key from the ATC; M/Chip's common session key with R = ARQC.
    auto sk = is_visa(check.cvn) ? emv::visa_sm_session_key(check.icc_mk_smi.view(), check.inputs.atc)
                                 : emv::common_session_key(check.icc_mk_smi.view(), check.arqc);
    if (!sk) return sk.err();
    std::uint32_t id = 0;
    for (issuer_script s : scripts) {
      const bytes head = s == issuer_script::pin_unblock   ? bytes{0x84, 0x24, 0x00, 0x00, 0x08}
                         : s == issuer_script::app_unblock ? bytes{0x84, 0x18, 0x00, 0x00, 0x08}
                                                           : bytes{0x84, 0x1E, 0x00, 0x00, 0x08};
      bytes mac_input = head;
      mac_input.push_back(static_cast<std::uint8_t>(check.inputs.atc >> 8));
      mac_input.push_back(static_cast<std::uint8_t>(check.inputs.atc));
      mac_input.insert(mac_input.end(), check.arqc.begin(), check.arqc.end());
      auto mac = emv::script_mac(sk->view(), mac_input);
      if (!mac) return mac.err();
      bytes command = head;
      command.insert(command.end(), mac->begin(), mac->end());
      ++id;
      const bytes script_id{0x00, 0x00, 0x00, static_cast<std::uint8_t>(id)};
      const std::uint32_t templ = s == issuer_script::app_block ? 0x71 : 0x72;
      out.push_back(tlv{templ, {}, {tlv{0x9F18, script_id, {}}, tlv{0x86, std::move(command), {}}}});
    }
  }
  const bytes enc = tlv_encode(out);
  return std::string(enc.begin(), enc.end());
}

}  // namespace eftd::acqsim
