// Test helpers for driving the EMV kernel: a transcript card (recorded C-APDU / R-APDU pairs
// answered in order) and a loop that plays the engine's part.
#pragma once

#include <catch2/catch.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/emv/kernel.hpp"

namespace eftd::emv::test {

inline bytes hx(std::string_view hex) {
  std::string clean;
  for (const char c : hex)
    if (c != ' ') clean.push_back(c);
  auto b = from_hex(clean);
  REQUIRE(b.has_value());
  return *b;
}

struct exchange_rec {
  bytes req;
  bytes res;
};

// Answers the kernel's commands from a recording, in order. A command matches the next
// recorded request at or after the cursor that is equal to it; a case-4 command also matches
// its recording without Le (a T=0 reader sends case 4 without Le, Book 1 9.3.1). Recorded
// exchanges the kernel does not make are skipped and listed; commands with no recording get
// `unmatched_sw` and are listed as extras.
class transcript_card {
 public:
  explicit transcript_card(std::vector<exchange_rec> recs, std::uint16_t unmatched_sw = 0x6A88)
      : recs_(std::move(recs)), unmatched_sw_(unmatched_sw) {}

  bytes transmit(const bytes& cmd) {
    for (std::size_t i = cursor_; i < recs_.size(); ++i) {
      if (!matches(cmd, recs_[i].req)) continue;
      for (std::size_t k = cursor_; k < i; ++k) skipped_.push_back(to_hex(recs_[k].req));
      cursor_ = i + 1;
      sent_.push_back(to_hex(recs_[i].req));
      return recs_[i].res;
    }
    extras_.push_back(to_hex(cmd));
    return {static_cast<std::uint8_t>(unmatched_sw_ >> 8), static_cast<std::uint8_t>(unmatched_sw_)};
  }

  // The recorded exchange at the cursor when it is the request `prefix` starts (for the pad's
  // VERIFY, which the test plays).
  std::optional<bytes> take_if(std::string_view prefix_hex) {
    const bytes prefix = hx(prefix_hex);
    for (std::size_t i = cursor_; i < recs_.size(); ++i) {
      if (recs_[i].req.size() < prefix.size() ||
          !std::equal(prefix.begin(), prefix.end(), recs_[i].req.begin()))
        continue;
      for (std::size_t k = cursor_; k < i; ++k) skipped_.push_back(to_hex(recs_[k].req));
      cursor_ = i + 1;
      sent_.push_back(to_hex(recs_[i].req));
      return recs_[i].res;
    }
    return std::nullopt;
  }

  const std::vector<std::string>& sent() const { return sent_; }
  const std::vector<std::string>& skipped() const { return skipped_; }
  const std::vector<std::string>& extras() const { return extras_; }
  std::size_t remaining() const { return recs_.size() - cursor_; }

 private:
  static bool matches(const bytes& cmd, const bytes& rec) {
    if (cmd == rec) return true;
    // cmd = rec + Le 00 for case 4.
    if (cmd.size() == rec.size() + 1 && cmd.back() == 0x00 && rec.size() > 5 && rec.size() == 5u + rec[4] &&
        std::equal(rec.begin(), rec.end(), cmd.begin()))
      return true;
    return false;
  }

  std::vector<exchange_rec> recs_;
  std::uint16_t unmatched_sw_;
  std::size_t cursor_ = 0;
  std::vector<std::string> sent_, skipped_, extras_;
};

// The engine's part. Each callback answers one kind of step; defaults: choose the first
// application, PIN entered online, signature acknowledged, host approves with ARC 00.
struct driver {
  std::function<bytes(const bytes&)> card;
  std::function<void(contact_kernel&, const contact_kernel::need_offline_pin&)> offline_pin;
  std::function<void(contact_kernel&, const contact_kernel::choose_application&)> choose =
      [](contact_kernel& k, const contact_kernel::choose_application&) { k.feed_choice(0); };
  std::function<void(contact_kernel&)> online_pin = [](contact_kernel& k) {
    k.feed_pin_result(pin_result::entered);
  };
  std::function<void(contact_kernel&, const contact_kernel::go_online&)> online =
      [](contact_kernel& k, const contact_kernel::go_online&) {
        online_result r;
        r.approved = true;
        r.arc = {'0', '0'};
        k.feed_online_result(r);
      };
  int signatures = 0;
  int online_requests = 0;
  int round_trips = 0;            // send_apdu and send_apdus steps answered
  int scripts = 0;                // send_apdus steps answered
  std::size_t script_limit = 32;  // a pad runs at most this many commands of a script
  // Answers command `index` of a script instead of `card` when set (a pad's odd answers).
  std::function<std::optional<bytes>(std::size_t index, const bytes&)> script_answer;
  std::vector<bytes> commands;  // every C-APDU the kernel sent
  bytes field55;

  contact_kernel::finished run(contact_kernel& k) {
    for (int guard = 0; guard < 500; ++guard) {
      auto s = k.next();
      if (auto* f = std::get_if<contact_kernel::finished>(&s)) return *f;
      if (auto* a = std::get_if<contact_kernel::send_apdu>(&s)) {
        ++round_trips;
        commands.push_back(a->capdu);
        const bytes r = card(a->capdu);
        k.feed_rapdu(r);
      } else if (auto* b = std::get_if<contact_kernel::send_apdus>(&s)) {
        ++round_trips;
        ++scripts;
        std::vector<bytes> answers;
        for (std::size_t i = 0; i < b->capdus.size() && i < script_limit; ++i) {
          std::optional<bytes> odd = script_answer ? script_answer(i, b->capdus[i]) : std::nullopt;
          commands.push_back(b->capdus[i]);
          answers.push_back(odd ? *odd : card(b->capdus[i]));
        }
        std::vector<byte_view> views(answers.begin(), answers.end());
        k.feed_rapdus(views);
      } else if (auto* c = std::get_if<contact_kernel::choose_application>(&s)) {
        choose(k, *c);
      } else if (std::holds_alternative<contact_kernel::need_online_pin>(s)) {
        online_pin(k);
      } else if (auto* p = std::get_if<contact_kernel::need_offline_pin>(&s)) {
        REQUIRE(offline_pin);
        offline_pin(k, *p);
      } else if (std::holds_alternative<contact_kernel::need_signature>(s)) {
        ++signatures;
        k.acknowledge();
      } else if (auto* o = std::get_if<contact_kernel::go_online>(&s)) {
        ++online_requests;
        field55 = o->field55;
        online(k, *o);
      }
    }
    FAIL("the kernel did not finish within 500 steps");
    return {};
  }
};

}  // namespace eftd::emv::test
