# Test helpers. Every Catch2 TEST_CASE becomes its own CTest test (catch_discover_tests),
# labelled so `ctest -L <label>` runs one area. Allowed labels:
#   unit pad serial usb pos iso8583 acquirer emv journal settlement reports browser
#   failover chaos fuzz e2e security
find_package(Catch2 2 REQUIRED)
include(Catch)

set(EFTD_TEST_LABELS unit pad serial usb pos iso8583 acquirer emv journal settlement reports
    browser failover chaos fuzz e2e security)

if(NOT TARGET eftd_catch_main)
  add_library(eftd_catch_main STATIC ${CMAKE_SOURCE_DIR}/tests/support/catch_main.cpp
                                     ${CMAKE_SOURCE_DIR}/tests/support/process.cpp)
  target_link_libraries(eftd_catch_main PUBLIC Catch2::Catch2 eftd_options)
  target_include_directories(eftd_catch_main PUBLIC ${CMAKE_SOURCE_DIR}/tests/support)
endif()

# eftd_catch_test(<name> LABELS l1 l2 SOURCES ... DEPS ...)
function(eftd_catch_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "LABELS;SOURCES;DEPS" ${ARGN})
  foreach(l IN LISTS ARG_LABELS)
    if(NOT l IN_LIST EFTD_TEST_LABELS)
      message(FATAL_ERROR "test ${name}: unknown label '${l}'")
    endif()
  endforeach()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE eftd_catch_main ${ARG_DEPS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  # -w NoTests: a test name that CTest mangles (e.g. one with a ";") must fail, not pass empty.
  catch_discover_tests(${name} TEST_PREFIX "${name}:" TEST_LIST ${name}_TESTS EXTRA_ARGS -w NoTests)
  # catch_discover_tests re-splits PROPERTIES several times, so list values (two labels,
  # two environment variables) cannot pass through it intact. Apply them from a second
  # include file that CTest reads after Catch's list of discovered tests.
  set(props_file "${CMAKE_CURRENT_BINARY_DIR}/${name}_props.cmake")
  file(WRITE "${props_file}"
    "foreach(t IN LISTS ${name}_TESTS)\n"
    "  set_tests_properties(\"\${t}\" PROPERTIES LABELS \"${ARG_LABELS}\" TIMEOUT ${ARG_TIMEOUT}\n"
    "    ENVIRONMENT \"EFTD_BIN=${CMAKE_BINARY_DIR}/bin;EFTD_SOURCE=${CMAKE_SOURCE_DIR}\")\n"
    "endforeach()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${props_file}")
endfunction()

# eftd_fuzz_target(<name> SOURCES harness.cpp DEPS ... CORPUS dir)
# With gcc: a corpus-replay test (label fuzz) that feeds every file of the corpus
# to LLVMFuzzerTestOneInput. tools/fuzz builds the same harness with clang's libFuzzer.
function(eftd_fuzz_target name)
  cmake_parse_arguments(ARG "" "CORPUS" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES} ${CMAKE_SOURCE_DIR}/tests/support/fuzz_replay_main.cpp)
  target_link_libraries(${name} PRIVATE eftd_options ${ARG_DEPS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME "fuzz-replay:${name}" COMMAND ${name} ${ARG_CORPUS})
  set_tests_properties("fuzz-replay:${name}" PROPERTIES LABELS "fuzz;security" TIMEOUT 300)
endfunction()
