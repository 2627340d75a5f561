// eftctl iso8583 decode: prints captured ISO 8583 frames field by field for certification
// against an acquirer's test host. Card data is masked by eftd::acq::masked_fields() (PAN
// first 6 / last 4, track 2, PIN block and the card's EMV tags hidden), so the output may be
// pasted into a ticket.
//
// Exit codes: 0 decoded; 2 bad input (bad hex, unknown dialect or framing, a frame or message
// that does not decode: one line on stderr naming the field, never its value); 3 the file
// cannot be read.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "commands.hpp"
#include "eftd/acq/codec.hpp"
#include "eftd/acq/framing.hpp"
#include "eftd/acq/masking.hpp"
#include "eftd/core/secure.hpp"

namespace eftctl {

namespace {

struct decode_args {
  std::string dialect;
  std::string framing = "none";
  std::string hex;
  std::string file;
  bool raw = false;
};

// Captured frames hold card data: wipe the buffers before they are freed.
struct wiped_bytes {
  eftd::bytes b;
  wiped_bytes() = default;
  wiped_bytes(const wiped_bytes&) = delete;
  wiped_bytes& operator=(const wiped_bytes&) = delete;
  ~wiped_bytes() {
    if (!b.empty()) eftd::secure_wipe(b.data(), b.size());
  }
};
struct wiped_string {
  std::string s;
  wiped_string() = default;
  wiped_string(const wiped_string&) = delete;
  wiped_string& operator=(const wiped_string&) = delete;
  ~wiped_string() {
    if (!s.empty()) eftd::secure_wipe(s.data(), s.size());
  }
};

int bad_input(std::string_view what) {
  fmt::print(stderr, "eftctl: iso8583 decode: {}\n", what);
  return exit_usage;
}

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}
bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Hex text, whitespace ignored. False (and `problem` set) if a character is not hex or the
// count is odd.
bool hex_to_bytes(std::string_view text, eftd::bytes& out, std::string& problem) {
  wiped_string digits;
  digits.s.reserve(text.size());
  for (char c : text) {
    if (is_space(c)) continue;
    if (!is_hex(c)) {
      problem = "not hexadecimal";
      return false;
    }
    digits.s.push_back(c);
  }
  if (digits.s.size() % 2 != 0) {
    problem = "odd number of hex digits";
    return false;
  }
  auto b = eftd::from_hex(digits.s);
  if (!b) {
    problem = "not hexadecimal";
    return false;
  }
  out = std::move(*b);
  return true;
}

// Whole input as text; hex when every byte is a hex digit or whitespace, raw bytes otherwise.
bool looks_like_hex(std::string_view text) {
  bool any = false;
  for (char c : text) {
    if (is_space(c)) continue;
    if (!is_hex(c)) return false;
    any = true;
  }
  return any;
}

void print_message(const eftd::acq::dialect& d, const eftd::acq::message& m) {
  fmt::print("MTI {}\n", eftd::acq::describe_mti(m.mti()));
  for (const auto& f : eftd::acq::masked_fields(d, m)) {
    fmt::print("  {:>3}  {:<50} {:<10} {}\n", f.number, f.name.empty() ? "(not in dialect)" : f.name,
               f.format, f.value);
    for (const auto& line : f.details) fmt::print("       {:<50} {:<10}   {}\n", "", "", line);
  }
}

// One message, the whole of `data`.
int decode_one(const eftd::acq::dialect& d, eftd::byte_view data, std::string_view where) {
  auto m = eftd::acq::unpack(d, data);
  if (!m) return bad_input(fmt::format("{}{} ({})", where, m.err().message, m.err().code));
  print_message(d, *m);
  return exit_ok;
}

int run_decode(const decode_args& a) {
  const eftd::acq::dialect* d = eftd::acq::find_dialect(a.dialect);
  if (!d) {
    std::string names;
    for (auto n : eftd::acq::dialect_names()) names += (names.empty() ? "" : ", ") + std::string(n);
    return bad_input(fmt::format("--dialect: unknown dialect '{}' (known: {})", a.dialect, names));
  }
  // "none" and "tpdu" are for a single captured message without a length header.
  const bool unframed = a.framing == "none" || a.framing == "tpdu";
  std::optional<eftd::acq::frame_options> framing;
  if (!unframed) {
    auto o = eftd::acq::parse_framing(a.framing);
    if (!o)
      return bad_input(fmt::format(
          "--framing: unknown framing '{}' (none, tpdu, binary2, ascii4, bcd2, each of the last three "
          "optionally +tpdu)",
          a.framing));
    o->max_payload = 65535;  // as much as any header can express: this is a reader, not a server
    framing = *o;
  }

  wiped_bytes input;
  if (!a.hex.empty()) {
    std::string problem;
    if (!hex_to_bytes(a.hex, input.b, problem)) return bad_input("--hex: " + problem);
  } else {
    wiped_string text;
    if (!a.file.empty()) {
      std::ifstream in{a.file, std::ios::binary};
      if (!in) {
        fmt::print(stderr, "eftctl: iso8583 decode: cannot read {}\n", a.file);
        return exit_io;
      }
      text.s.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else {
      char buf[4096];
      std::size_t n = 0;
      while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) text.s.append(buf, n);
      eftd::secure_wipe(buf, sizeof buf);
    }
    const bool blank = text.s.find_first_not_of(" \n\r\t") == std::string::npos;
    if (!a.raw && blank) return bad_input("no input (give --hex, --file or bytes on stdin)");
    if (!a.raw && looks_like_hex(text.s)) {
      std::string problem;
      if (!hex_to_bytes(text.s, input.b, problem)) return bad_input("input: " + problem);
    } else {
      input.b.assign(text.s.begin(), text.s.end());
    }
  }
  if (input.b.empty()) return bad_input("no input (give --hex, --file or bytes on stdin)");

  if (unframed) {
    eftd::byte_view msg{input.b};
    if (a.framing == "tpdu") {
      auto t = eftd::acq::tpdu_header::decode(msg);
      if (!t) return bad_input(fmt::format("{} ({})", t.err().message, t.err().code));
      fmt::print("TPDU {} (destination {:04X}, source {:04X})\n", t->to_string(), t->destination, t->source);
      msg = msg.subspan(eftd::acq::tpdu_header::size);
    }
    return decode_one(*d, msg, "");
  }

  auto codec = eftd::acq::frame_codec::create(*framing);
  if (!codec) return bad_input(fmt::format("--framing: {}", codec.err().message));
  eftd::acq::frame_reader reader{*codec};
  reader.feed(input.b);
  int frames = 0;
  for (;;) {
    auto f = reader.next();
    if (!f) {
      return bad_input(fmt::format("frame {}: {} ({})", frames + 1, f.err().message, f.err().code));
    }
    if (!*f) break;
    wiped_bytes payload;
    payload.b = std::move(**f);
    ++frames;
    if (frames > 1) fmt::print("\n");
    if (reader.last_tpdu())
      fmt::print("frame {}: {} bytes, TPDU {}\n", frames, payload.b.size(), reader.last_tpdu()->to_string());
    else
      fmt::print("frame {}: {} bytes\n", frames, payload.b.size());
    if (int rc = decode_one(*d, payload.b, fmt::format("frame {}: ", frames)); rc != exit_ok) return rc;
  }
  if (reader.keep_alives() > 0) fmt::print("keep-alive frames: {}\n", reader.keep_alives());
  if (reader.buffered() > 0)
    return bad_input(fmt::format("input ends inside frame {} ({} byte{} left over)", frames + 1,
                                 reader.buffered(), reader.buffered() == 1 ? "" : "s"));
  if (frames == 0) fmt::print("no message\n");
  return exit_ok;
}

}  // namespace

void add_iso8583_commands(CLI::App& app, runner& run) {
  auto* iso =
      app.add_subcommand("iso8583", "ISO 8583 tools for certification against an acquirer's test host");
  iso->require_subcommand(1);

  auto args = std::make_shared<decode_args>();
  auto* decode = iso->add_subcommand(
      "decode",
      "print captured ISO 8583 frames field by field (number, name, format, value), card data masked. "
      "Input: --hex, --file, or stdin; hex text (whitespace ignored) or raw bytes. Exit 2 on input that "
      "does not decode");
  std::string dialects;
  for (auto n : eftd::acq::dialect_names()) dialects += (dialects.empty() ? "" : ", ") + std::string(n);
  decode->add_option("--dialect", args->dialect, "dialect: " + dialects)->required();
  decode
      ->add_option("--framing", args->framing,
                   "none (one message), tpdu (TPDU + one message), or a stream of frames: binary2, ascii4, "
                   "bcd2, optionally +tpdu (e.g. bcd2+tpdu)")
      ->capture_default_str();
  auto* hex = decode->add_option("--hex", args->hex, "the input as hex digits");
  auto* file =
      decode->add_option("--file", args->file, "read the input from this file (hex text or raw bytes)");
  hex->excludes(file);
  decode->add_flag("--raw", args->raw, "the file or stdin holds raw bytes, even if they look like hex");
  decode->callback([&run, args] { run = [args] { return run_decode(*args); }; });

  struct trace_args {
    std::string socket = "var/eftd-admin.sock", acquirer, state;
  };
  auto ta = std::make_shared<trace_args>();
  auto* trace = iso->add_subcommand(
      "trace",
      "switch a running eftd's message trace for one acquirer link on or off (logged, card data masked)");
  trace->add_option("--socket", ta->socket, "eftd's admin socket ([admin] socket)")->capture_default_str();
  trace->add_option("--acquirer", ta->acquirer, "acquirer name as configured")->required();
  trace->add_option("state", ta->state, "on or off")->required()->check(CLI::IsMember({"on", "off"}));
  trace->callback([&run, ta] {
    run = [ta] {
      nlohmann::json req{{"cmd", "trace"}, {"acquirer", ta->acquirer}, {"on", ta->state == "on"}};
      auto line = admin_request(ta->socket, req.dump(), 10000);
      if (!line) {
        fmt::print(stderr, "eftctl: {} ({})\n", line.err().message, line.err().code);
        return exit_io;
      }
      auto reply = nlohmann::json::parse(*line, nullptr, false);
      if (reply.is_discarded() || !reply.is_object() || !reply.value("ok", false)) {
        const auto why =
            reply.is_object() && reply.contains("error") ? reply["error"].value("message", "") : *line;
        fmt::print(stderr, "eftctl: eftd refused: {}\n", why);
        return exit_problems;
      }
      fmt::print("acquirer {}: message trace {}\n", ta->acquirer, reply.value("trace", false) ? "on" : "off");
      return exit_ok;
    };
  });
}

}  // namespace eftctl
