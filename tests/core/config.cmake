# Config, logging and eftctl tests. Included from tests/core/CMakeLists.txt; owned separately
# from the rest of the core tests (files config_*.cpp).
eftd_catch_test(config_tests LABELS unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/config_parse_tests.cpp
          ${CMAKE_CURRENT_LIST_DIR}/config_override_tests.cpp
          ${CMAKE_CURRENT_LIST_DIR}/config_log_tests.cpp
          ${CMAKE_CURRENT_LIST_DIR}/config_notify_tests.cpp
          ${CMAKE_CURRENT_LIST_DIR}/config_reload_tests.cpp
  DEPS eftd_core)
target_compile_definitions(config_tests PRIVATE EFTD_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}")

if(TARGET eftctl AND TARGET eftd_journal)
  eftd_catch_test(config_eftctl_tests LABELS unit
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/config_eftctl_tests.cpp
    DEPS eftd_journal)
  target_compile_definitions(config_eftctl_tests PRIVATE EFTD_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                                                         EFTD_TEST_BIN_DIR="${CMAKE_BINARY_DIR}/bin")
  add_dependencies(config_eftctl_tests eftctl)
endif()
