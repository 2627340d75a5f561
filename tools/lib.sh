# Shared set-up for tools/demo, tools/test, tools/fuzz, tools/bench. Sourced, not run.
# Installs missing Debian packages, configures and builds. Idempotent and quiet when done.

EFTD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

EFTD_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost1.81-dev libssl-dev openssl libsqlite3-dev sqlite3 libfmt-dev libspdlog-dev catch2
  libserialport-dev libusb-1.0-0-dev libtomlplusplus-dev nlohmann-json3-dev libcli11-dev
  socat python3 clang libclang-rt-14-dev procps tmux chromium
)

eftd_install_deps() {
  local missing=()
  for p in "${EFTD_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "eftd: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q >&2
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
  # Node.js drives the browser tests (playwright-core from npm, Chromium from Debian). A
  # Node.js that ships its own npm is kept; otherwise Debian's nodejs and npm.
  if ! command -v npm >/dev/null 2>&1; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q >&2
    $sudo apt-get install -y -q --no-install-recommends nodejs npm >&2
  fi
}

# The browser tests' npm packages (tests/browser/package-lock.json), installed only when the
# lock file changed since the last install.
eftd_install_browser_deps() {
  local d="$EFTD_ROOT/tests/browser"
  [ -f "$d/package-lock.json" ] || return 0
  if [ ! -f "$d/node_modules/.package-lock.json" ] || [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
    (cd "$d" && npm ci --no-audit --no-fund --prefer-offline >&2)
  fi
}

# eftd_build <build-dir> [extra cmake args...]
eftd_build() {
  local dir="$1"; shift
  # Scripted builds (tools/test, tools/demo, CI) keep a cache of their own, apart from the one
  # developers' interactive builds use: with the include_file_mtime sloppiness below, a header
  # edited while a compile runs can leave an object built from its old text under its new hash,
  # and such an entry must never reach a CI build. Clean clones never change under a compile.
  export CCACHE_DIR="${EFTD_CCACHE_DIR:-$HOME/.cache/eftd-ccache-clean}"
  export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
  # PCH and ccache: without these options ccache refuses to cache precompiled-header users.
  export CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"
  # Paths relative to the checkout, so a fresh clone elsewhere (CI) hits the same cache.
  export CCACHE_BASEDIR="$EFTD_ROOT"
  export CCACHE_NOHASHDIR=1
  local jobs="${EFTD_JOBS:-$(nproc)}"
  if [ ! -f "$EFTD_ROOT/$dir/build.ninja" ]; then
    cmake -S "$EFTD_ROOT" -B "$EFTD_ROOT/$dir" -G Ninja "$@" >&2
  fi
  cmake --build "$EFTD_ROOT/$dir" -j "$jobs" >&2
}
