// ctest passes EFTD_BIN and EFTD_SOURCE; when a pad test executable is run by hand, default
// them to this build's bin/ and source tree (never overriding what the environment says).
#include <cstdlib>

namespace {

[[maybe_unused]] const bool env_defaults = [] {
  ::setenv("EFTD_BIN", EFTD_PAD_TEST_BIN_DIR, 0);
  ::setenv("EFTD_SOURCE", EFTD_PAD_TEST_SOURCE_DIR, 0);
  return true;
}();

}  // namespace
