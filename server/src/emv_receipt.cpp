#include "emv_receipt.hpp"

#include <nlohmann/json.hpp>

#include "eftd/emv/tlv_store.hpp"

namespace eftd::server {

namespace {

using json = nlohmann::json;

// A label the card sends for display (9F12 or 50): printable ASCII only, at most 16 characters.
std::string printable(std::optional<byte_view> v) {
  std::string out;
  if (!v) return out;
  for (auto c : *v) {
    if (out.size() == 16) break;
    if (c >= 0x20 && c < 0x7F) out.push_back(static_cast<char>(c));
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string hex_of(std::optional<byte_view> v) {
  return v ? to_hex(*v) : std::string();
}

}  // namespace

std::string emv_receipt_data(const emv::tlv_store& data, byte_view tvr, byte_view tsi, std::string_view cvm) {
  json j = json::object();
  auto aid = data.get(0x84);
  if (!aid) aid = data.get(0x4F);
  if (aid) j["aid"] = to_hex(*aid);
  std::string label = printable(data.get(0x9F12));
  if (label.empty()) label = printable(data.get(0x50));
  if (!label.empty()) j["label"] = label;
  if (!tvr.empty()) j["tvr"] = to_hex(tvr);
  if (!tsi.empty()) j["tsi"] = to_hex(tsi);
  if (auto cid = data.get(0x9F27); cid && cid->size() == 1) {
    const auto type = (*cid)[0] & 0xC0;
    j["ac_type"] = type == 0x40 ? "TC" : type == 0x80 ? "ARQC" : type == 0x00 ? "AAC" : "AC";
  }
  if (auto ac = hex_of(data.get(0x9F26)); !ac.empty()) j["ac"] = ac;
  if (!cvm.empty()) j["cvm"] = std::string(cvm);
  return j.dump();
}

std::string contact_cvm_word(const emv::tlv_store& data, bool signature_required) {
  if (signature_required) return "signature";
  auto r = data.get(0x9F34);
  if (!r || r->size() != 3) return "none";
  // Result byte 3: 02 successful; 01 failed. 00 (unknown) is printed by the method alone, as
  // for online PIN and signature whose outcome the card cannot know.
  if ((*r)[2] == 0x01) return "none";
  switch ((*r)[0] & 0x3F) {
    case 0x01:
    case 0x04:
      return "offline_pin";
    case 0x02:
      return "online_pin";
    case 0x03:
    case 0x05:
      return "offline_pin_signature";
    case 0x1E:
      return "signature";
    case 0x1F:
      return "no_cvm";
    default:
      return "none";
  }
}

emv_receipt_lines emv_receipt_rows(std::string_view emv_data) {
  emv_receipt_lines out;
  if (emv_data.empty()) return out;
  json j = json::parse(emv_data, nullptr, false);
  if (!j.is_object()) return out;
  auto text = [&](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (auto v = text("label"); !v.empty()) out.rows.emplace_back("App", v);
  if (auto v = text("aid"); !v.empty()) out.rows.emplace_back("AID", v);
  if (auto v = text("tvr"); !v.empty()) out.rows.emplace_back("TVR", v);
  if (auto v = text("tsi"); !v.empty()) out.rows.emplace_back("TSI", v);
  if (auto v = text("ac"); !v.empty()) {
    auto type = text("ac_type");
    out.rows.emplace_back(type.empty() ? "AC" : type, v);
  }
  const auto cvm = text("cvm");
  static const std::pair<std::string_view, std::string_view> words[] = {
      {"online_pin", "PIN verified online"},
      {"offline_pin", "PIN verified"},
      {"offline_pin_signature", "PIN verified, signature"},
      {"signature", "Signature"},
      {"cdcvm", "Verified on device"},
      {"no_cvm", "No CVM"},
  };
  for (const auto& [word, shown] : words)
    if (cvm == word) out.rows.emplace_back("CVM", std::string(shown));
  out.signature_line = cvm == "signature" || cvm == "offline_pin_signature";
  return out;
}

std::map<std::string, std::string> emv_result_fields(std::string_view emv_data,
                                                     std::string_view response_code) {
  std::map<std::string, std::string> out;
  if (emv_data.empty()) return out;
  json j = json::parse(emv_data, nullptr, false);
  if (!j.is_object()) return out;
  static const std::pair<const char*, const char*> keys[] = {
      {"aid", "AID"}, {"label", "app_label"}, {"tvr", "TVR"}, {"tsi", "TSI"},
      {"ac", "AC"},   {"ac_type", "AC_type"}, {"cvm", "CVM"},
  };
  for (const auto& [from, to] : keys)
    if (auto it = j.find(from); it != j.end() && it->is_string()) out[to] = it->get<std::string>();
  if (!out.empty() && !response_code.empty()) out["ARC"] = std::string(response_code);
  return out;
}

}  // namespace eftd::server
