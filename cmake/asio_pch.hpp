// Precompiled header for translation units that use Boost.Asio coroutines.
// Never include this directly; targets opt in with eftd_use_asio_pch().
#pragma once
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>
