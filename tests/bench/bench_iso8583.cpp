// bench_iso8583: ISO 8583 pack + unpack per second on this machine, for a typical 0200 chip
// sale (PIN block, track 2 equivalent, 56 bytes of field 55) in each shipped dialect.
//
// One iteration = pack(message) then unpack(bytes), both through the dialect tables as a link
// does them (no framing). The message is checked to round-trip before timing.
//
// Not a CTest test (its figures depend on the machine). Prints a readable summary, then one
// JSON line at the end:
//   {"bench":"iso8583","message":"0200 chip sale with field 55","seconds_per_dialect":...,
//    "iso87_ascii_bytes":...,"iso87_ascii_pack_unpack_per_s":...,"iso87_bcd_bytes":...,...}
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "eftd/acq/codec.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

// Public test card and made-up chip data: nothing here is a real card.
eftd::acq::message typical_0200() {
  const auto raw = [](std::string_view hex) {
    auto b = eftd::from_hex(hex);
    return std::string(b->begin(), b->end());
  };
  eftd::acq::message m{"0200"};
  m.set(3, "000000");
  m.set(4, "000000012500");
  m.set(7, "0615123456");
  m.set(11, "000123");
  m.set(12, "123456");
  m.set(13, "0615");
  m.set(14, "2512");
  m.set(22, "051");
  m.set(23, "001");
  m.set(25, "00");
  m.set(32, "00000000001");
  m.set(35, "4761739001010119D25122011143800000");
  m.set(41, "TERM0001");
  m.set(42, "MERCHANT0000001");
  m.set(49, "985");
  m.set(52, raw("0123456789ABCDEF"));
  m.set(55, raw("9F26081122334455667788"
                "9F270180"
                "9F370412345678"
                "9F36020001"
                "95050000000000"
                "9A03250615"
                "9C0100"
                "5F2A020985"
                "9F0206000000012500"));
  return m;
}

struct figure {
  std::string dialect;
  std::size_t bytes = 0;
  double per_s = 0;
};

// Packs and unpacks until `seconds` have passed; the clock is read every 256 iterations so
// its cost stays out of the figure.
bool measure(const eftd::acq::dialect& d, const eftd::acq::message& m, double seconds, figure& out) {
  auto first = eftd::acq::pack(d, m);
  if (!first) {
    std::fprintf(stderr, "bench_iso8583: %s: pack failed: %s\n", std::string(d.name).c_str(),
                 first.err().message.c_str());
    return false;
  }
  auto back = eftd::acq::unpack(d, *first);
  if (!back || !(*back == m)) {
    std::fprintf(stderr, "bench_iso8583: %s: the message does not round-trip\n", std::string(d.name).c_str());
    return false;
  }
  out.dialect = std::string(d.name);
  out.bytes = first->size();

  std::size_t sink = 0;  // consumed below so the work cannot be optimised away
  std::uint64_t iterations = 0;
  const auto t0 = clock_type::now();
  double elapsed = 0;
  do {
    for (int i = 0; i < 256; ++i) {
      auto p = eftd::acq::pack(d, m);
      auto u = eftd::acq::unpack(d, *p);
      sink += p->size() + u->fields().size();
    }
    iterations += 256;
    elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
  } while (elapsed < seconds);
  if (sink == 0) return false;
  out.per_s = static_cast<double>(iterations) / elapsed;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_iso8583: ISO 8583 pack + unpack per second, typical 0200 with field 55"};
  double seconds = 2.0;
  app.add_option("--seconds", seconds, "measuring time per dialect")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 600.0));
  CLI11_PARSE(app, argc, argv);

  const auto m = typical_0200();
  std::vector<figure> figures;
  for (auto name : eftd::acq::dialect_names()) {
    figure f;
    if (!measure(*eftd::acq::find_dialect(name), m, seconds, f)) return 1;
    std::printf("%-12s %4zu bytes  %10.0f pack+unpack/s  (%.2f us each)\n", f.dialect.c_str(), f.bytes,
                f.per_s, 1e6 / f.per_s);
    figures.push_back(f);
  }

  std::string json = fmt::format(R"({{"bench":"iso8583","message":"0200 chip sale with field 55",)"
                                 R"("seconds_per_dialect":{})",
                                 seconds);
  for (const auto& f : figures) {
    std::string key = f.dialect;
    for (auto& c : key)
      if (c == '-') c = '_';
    json += fmt::format(R"(,"{}_bytes":{},"{}_pack_unpack_per_s":{:.0f})", key, f.bytes, key, f.per_s);
  }
  json += "}";
  std::printf("%s\n", json.c_str());
  return 0;
}
