// eftctl keys: key custody on the encrypted key store (eftd/core/keystore.hpp). Custodians enter
// components (dual control) and see only KCVs; operators list, rotate and retire keys, export
// DUKPT initial keys to pads as TR-31 blocks and import keys received in TR-31 blocks.
// Nothing here prints or logs a clear key or component.
//
// Every command takes --store FILE (default $EFTD_KEYSTORE, else ./eftd-keys.store) and
// --master-key FILE (default $EFTD_KEYSTORE_MASTER, else FILE.master). The first component
// ever entered creates both (the master key file with mode 0600). Changes are made under an
// exclusive lock on FILE.lock, so two custodians at their terminals cannot lose each other's
// component.
//
// Exit codes: 0 done; 1 nothing to do (e.g. finish with no components pending); 2 bad or refused
// input (bad hex, unknown names, KCV mismatch, a key block whose MAC fails); 3 the key store or
// master key cannot be read or written (missing, wrong master key, tampered, insecure mode).
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "commands.hpp"
#include "eftd/core/keystore.hpp"

namespace eftctl {

namespace {

namespace ks = eftd::keystore;

struct store_args {
  std::string store;
  std::string master;
};

struct keys_args {
  store_args files;
  std::string name;
  std::string type;
  std::string component;
  std::uint32_t version = 0;
  std::string bdk;
  std::string ksn;
  std::string kbpk;
  std::string block_version;
  std::string block;
  std::string expect_kcv;
};

std::string default_store() {
  const char* v = std::getenv("EFTD_KEYSTORE");
  return v != nullptr && *v != '\0' ? std::string(v) : std::string("eftd-keys.store");
}

std::string master_path(const store_args& a) {
  if (!a.master.empty()) return a.master;
  const char* v = std::getenv("EFTD_KEYSTORE_MASTER");
  if (v != nullptr && *v != '\0') return v;
  return a.store + ".master";
}

int fail(int code, std::string_view what) {
  fmt::print(stderr, "eftctl: {}\n", what);
  return code;
}

// Store and master-key troubles are "cannot read" (3); everything else comes from the input.
int store_error(const eftd::error& e) {
  const bool io =
      e.code.rfind("keystore.", 0) == 0 &&
      (e.code == "keystore.io" || e.code == "keystore.not_found" || e.code == "keystore.tampered" ||
       e.code == "keystore.wrong_master_key" || e.code == "keystore.bad_format" ||
       e.code == "keystore.insecure_mode" || e.code == "keystore.bad_master_key");
  const bool nothing = e.code == "keystore.no_components";
  return fail(io ? exit_io : nothing ? exit_problems : exit_usage, fmt::format("{} ({})", e.message, e.code));
}

// flock() on FILE.lock for the whole read-modify-write; released when the descriptor closes.
class store_lock {
 public:
  ~store_lock() {
    if (fd_ >= 0) ::close(fd_);
  }
  eftd::status acquire(const std::string& store) {
    const std::string path = store + ".lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return eftd::make_error("keystore.io", path + ": open: " + std::strerror(errno));
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) return eftd::make_error("keystore.io", path + ": lock: " + std::strerror(errno));
    }
    return {};
  }

 private:
  int fd_ = -1;
};

struct opened {
  std::unique_ptr<ks::file_master_key> mk;
  ks::key_store store;
};

// create: a missing store (and master key) is allowed and starts empty.
eftd::result<opened> open_store(const store_args& a, bool create) {
  std::error_code ec;
  const bool exists = std::filesystem::exists(a.store, ec);
  if (!exists && !create) return eftd::make_error("keystore.not_found", a.store + ": no key store here");
  // Never make a fresh master key for an existing store: it could not open it anyway.
  auto mk = ks::file_master_key::load(master_path(a), !exists);
  if (!mk) return mk.err();
  opened o{std::move(*mk), {}};
  if (exists) {
    auto s = ks::key_store::load(a.store, *o.mk);
    if (!s) return s.err();
    o.store = std::move(*s);
  }
  return o;
}

std::int64_t now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

std::string format_time(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Hex from the command line, or one line from stdin for "-" (keeps the component out of the
// shell history and the process list). Decoded into a wiped buffer.
std::optional<eftd::secure_bytes> secret_hex(std::string_view option, std::string text) {
  if (text == "-") {
    std::getline(std::cin, text);
    while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.pop_back();
  }
  auto b = eftd::from_hex(text);
  if (!text.empty()) eftd::secure_wipe(text.data(), text.size());
  if (!b || b->empty()) {
    fail(exit_usage, fmt::format("{}: not an even number of hex digits", option));
    return std::nullopt;
  }
  eftd::secure_bytes out{*b};
  eftd::secure_wipe(b->data(), b->size());
  return out;
}

int run_component_add(const keys_args& a) {
  auto type = ks::parse_key_type(a.type);
  if (!type) return store_error(type.err());
  auto component = secret_hex("--component", a.component);
  if (!component) return exit_usage;
  store_lock lock;
  if (auto st = lock.acquire(a.files.store); !st) return store_error(st.err());
  auto o = open_store(a.files, true);
  if (!o) return store_error(o.err());
  auto added = o->store.add_component(a.name, *type, component->view(), now());
  if (!added) return store_error(added.err());
  if (auto st = o->store.save(a.files.store, *o->mk); !st) return store_error(st.err());
  fmt::print("{} {}: component {} entered, component KCV {}\n", a.name, ks::to_string(*type), added->index,
             eftd::to_hex(added->kcv));
  if (added->index < 2)
    fmt::print("at least one more component is needed (dual control) before `keys component finish`\n");
  return exit_ok;
}

void print_key(const ks::key_info& k) {
  fmt::print("{} {} version {} {}, KCV {}\n", k.name, ks::to_string(k.type), k.version,
             ks::to_string(k.state), eftd::to_hex(k.kcv));
}

int run_component_finish(const keys_args& a) {
  store_lock lock;
  if (auto st = lock.acquire(a.files.store); !st) return store_error(st.err());
  auto o = open_store(a.files, false);
  if (!o) return store_error(o.err());
  std::size_t count = 0;
  for (const auto& p : o->store.pending())
    if (p.name == a.name) count = p.components;
  auto info = o->store.finish_components(a.name, now());
  if (!info) return store_error(info.err());
  if (auto st = o->store.save(a.files.store, *o->mk); !st) return store_error(st.err());
  print_key(*info);
  fmt::print("{} components combined and wiped\n", count);
  return exit_ok;
}

int run_component_cancel(const keys_args& a) {
  store_lock lock;
  if (auto st = lock.acquire(a.files.store); !st) return store_error(st.err());
  auto o = open_store(a.files, false);
  if (!o) return store_error(o.err());
  if (auto st = o->store.cancel_components(a.name); !st) return store_error(st.err());
  if (auto st = o->store.save(a.files.store, *o->mk); !st) return store_error(st.err());
  fmt::print("{}: pending components wiped\n", a.name);
  return exit_ok;
}

int run_list(const keys_args& a) {
  auto o = open_store(a.files, false);
  if (!o) return store_error(o.err());
  fmt::print("{:<20} {:<11} {:>7} {:<9} {:<10} {}\n", "NAME", "TYPE", "VERSION", "STATE", "KCV", "CREATED");
  for (const auto& k : o->store.list())
    fmt::print("{:<20} {:<11} {:>7} {:<9} {:<10} {}\n", k.name, ks::to_string(k.type), k.version,
               ks::to_string(k.state), eftd::to_hex(k.kcv), format_time(k.created));
  for (const auto& p : o->store.pending())
    fmt::print("{:<20} {:<11} {:>7} {:<9} {:<10} {} ({} component{} entered)\n", p.name,
               ks::to_string(p.type), "-", p.rotation ? "rotating" : "pending", "-", format_time(p.started),
               p.components, p.components == 1 ? "" : "s");
  return exit_ok;
}

int run_rotate(const keys_args& a) {
  store_lock lock;
  if (auto st = lock.acquire(a.files.store); !st) return store_error(st.err());
  auto o = open_store(a.files, false);
  if (!o) return store_error(o.err());
  auto p = o->store.start_rotation(a.name, now());
  if (!p) return store_error(p.err());
  if (auto st = o->store.save(a.files.store, *o->mk); !st) return store_error(st.err());
  fmt::print(
      "{} {}: rotation started; each custodian runs `eftctl keys component add --name {} --type {}`, then "
      "`eftctl keys component finish --name {}`. The current version stays usable until `eftctl keys "
      "retire`.\n",
      a.name, ks::to_string(p->type), a.name, ks::to_string(p->type), a.name);
  return exit_ok;
}

int run_retire(const keys_args& a) {
  store_lock lock;
  if (auto st = lock.acquire(a.files.store); !st) return store_error(st.err());
  auto o = open_store(a.files, false);
  if (!o) return store_error(o.err());
  auto info = o->store.retire(a.name, a.version);
  if (!info) return store_error(info.err());
  if (auto st = o->store.save(a.files.store, *o->mk); !st) return store_error(st.err());
  print_key(*info);
  return exit_ok;
}

int run_export_ipek(const keys_args& a) {
  auto ksn = eftd::from_hex(a.ksn);
  if (!ksn || ksn->empty()) return fail(exit_usage, "--ksn: not an even number of hex digits");
  std::optional<char> version;
  if (a.block_version == "B" || a.block_version == "b")
    version = 'B';
  else if (a.block_version == "D" || a.block_version == "d")
    version = 'D';
  else if (!a.block_version.empty())
    return fail(exit_usage, "--version: must be B or D");
  auto o = open_store(a.files, false);
  if (!o) return store_error(o.err());
  auto out = ks::export_initial_key(o->store, a.bdk, *ksn, a.kbpk, version, eftd::system_random());
  if (!out) return store_error(out.err());
  fmt::print("{}\n", out->block);
  fmt::print(stderr, "eftctl: initial key KCV {}\n", eftd::to_hex(out->kcv));
  return exit_ok;
}

int run_import(const keys_args& a) {
  std::optional<ks::key_type> type;
  if (!a.type.empty()) {
    auto t = ks::parse_key_type(a.type);
    if (!t) return store_error(t.err());
    type = *t;
  }
  store_lock lock;
  if (auto st = lock.acquire(a.files.store); !st) return store_error(st.err());
  auto o = open_store(a.files, false);
  if (!o) return store_error(o.err());
  auto info = ks::import_key_block(o->store, a.kbpk, a.block, a.name, a.expect_kcv, type, now());
  if (!info) return store_error(info.err());
  if (auto st = o->store.save(a.files.store, *o->mk); !st) return store_error(st.err());
  print_key(*info);
  return exit_ok;
}

void add_store_options(CLI::App* cmd, keys_args& a) {
  a.files.store = default_store();
  cmd->add_option("--store", a.files.store, "key store file (default $EFTD_KEYSTORE or ./eftd-keys.store)");
  cmd->add_option("--master-key", a.files.master,
                  "master key file, 0600 (default $EFTD_KEYSTORE_MASTER or STORE.master)");
}

using handler = int (*)(const keys_args&);

std::shared_ptr<keys_args> command(CLI::App* parent, runner& run, const char* name, const char* help,
                                   handler h, CLI::App** out) {
  auto args = std::make_shared<keys_args>();
  auto* cmd = parent->add_subcommand(name, help);
  add_store_options(cmd, *args);
  cmd->callback([&run, args, h] { run = [args, h] { return h(*args); }; });
  *out = cmd;
  return args;
}

}  // namespace

void add_keys_commands(CLI::App& app, runner& run) {
  auto* keys = app.add_subcommand("keys", "key custody: encrypted key store, components, rotation, TR-31");
  keys->require_subcommand(1);

  auto* component = keys->add_subcommand("component", "enter a key as components under dual control");
  component->require_subcommand(1);
  CLI::App* cmd = nullptr;
  auto add = command(component, run, "add",
                     "enter one custodian's component (hex, or - to read it from stdin); prints only that "
                     "component's KCV",
                     run_component_add, &cmd);
  cmd->add_option("--name", add->name, "key name")->required();
  cmd->add_option("--type", add->type,
                  "BDK-TDES, BDK-AES128, BDK-AES256, KBPK-TDES, KBPK-AES, ZPK-TDES, ZPK-AES, MAK-TDES")
      ->required();
  cmd->add_option("--component", add->component, "component, hex (or - for stdin)")->required();

  auto finish = command(component, run, "finish",
                        "XOR the components (at least 2) into the key, wipe them, print the key's KCV",
                        run_component_finish, &cmd);
  cmd->add_option("--name", finish->name, "key name")->required();

  auto cancel = command(component, run, "cancel", "wipe pending components", run_component_cancel, &cmd);
  cmd->add_option("--name", cancel->name, "key name")->required();

  command(keys, run, "list", "names, types, versions, states and KCVs", run_list, &cmd);

  auto rotate = command(keys, run, "rotate",
                        "start a new version of a key from new components; the old version is retired but "
                        "kept (for old DUKPT traffic) until `keys retire`",
                        run_rotate, &cmd);
  cmd->add_option("--name", rotate->name, "key name")->required();

  auto retire =
      command(keys, run, "retire", "destroy a retired version (the record and KCV stay)", run_retire, &cmd);
  cmd->add_option("--name", retire->name, "key name")->required();
  cmd->add_option("--version", retire->version, "version to destroy")->required();

  auto exp = command(keys, run, "export-ipek",
                     "derive a pad's DUKPT initial key from a BDK and print it as a TR-31 block under a KBPK "
                     "(its KCV goes to stderr)",
                     run_export_ipek, &cmd);
  cmd->add_option("--bdk", exp->bdk, "BDK name")->required();
  cmd->add_option("--ksn", exp->ksn, "KSN, hex (10 bytes TDES, 12 bytes AES)")->required();
  cmd->add_option("--kbpk", exp->kbpk, "KBPK name")->required();
  cmd->add_option("--version", exp->block_version, "key block version B (TDES KBPK) or D (AES KBPK)");

  auto imp = command(keys, run, "import",
                     "import a key from a TR-31 block (MAC and KCV checked; a mismatch is refused, exit 2)",
                     run_import, &cmd);
  cmd->add_option("--kbpk", imp->kbpk, "KBPK name")->required();
  cmd->add_option("--block", imp->block, "TR-31 key block")->required();
  cmd->add_option("--name", imp->name, "name to store the key under")->required();
  cmd->add_option("--expect-kcv", imp->expect_kcv, "expected KCV, hex (6 to 10 digits)")->required();
  cmd->add_option("--type", imp->type, "store type, when the block's usage does not say");
}

}  // namespace eftctl
