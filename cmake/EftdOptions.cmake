# Project-wide compile options, applied per target through eftd_target_defaults().

add_library(eftd_options INTERFACE)
target_compile_options(eftd_options INTERFACE
  -Wall -Wextra -Wpedantic -Werror
  -Wno-missing-field-initializers
  # GCC 12 false positive on Asio coroutine frames (awaitable_frame_base's operator delete).
  -Wno-mismatched-new-delete)
# Boost.Asio: no deprecated interfaces, and coroutines via C++20.
target_compile_definitions(eftd_options INTERFACE
  BOOST_ASIO_NO_DEPRECATED
  BOOST_ASIO_DISABLE_CONCEPTS_CHECKING
  SPDLOG_FMT_EXTERNAL)
if(EFTD_SANITIZE)
  target_compile_options(eftd_options INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(eftd_options INTERFACE -fsanitize=address,undefined)
endif()

# eftd_library(NAME <name> [SOURCES ...] [DEPS ...] [PUBLIC_DEPS ...])
# A library with its public headers in <dir>/include.
function(eftd_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PUBLIC_DEPS" ${ARGN})
  if(NOT ARG_SOURCES)
    message(STATUS "${name}: no sources yet, skipped")
    return()
  endif()
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                     PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC eftd_options ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_DEPS})
endfunction()

# eftd_executable(<name> SOURCES ... DEPS ...): a thin main, built into bin/.
function(eftd_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE eftd_options ${ARG_DEPS})
endfunction()

# Targets that include Boost.Asio reuse one precompiled header.
add_library(eftd_asio_pch STATIC ${CMAKE_SOURCE_DIR}/cmake/asio_pch.cpp)
target_link_libraries(eftd_asio_pch PUBLIC eftd_options Boost::headers OpenSSL::SSL OpenSSL::Crypto Threads::Threads)
target_precompile_headers(eftd_asio_pch PUBLIC ${CMAKE_SOURCE_DIR}/cmake/asio_pch.hpp)

function(eftd_use_asio_pch target)
  target_link_libraries(${target} PRIVATE eftd_asio_pch)
  target_precompile_headers(${target} REUSE_FROM eftd_asio_pch)
endfunction()
