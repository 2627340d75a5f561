// eft-pos-sim: command-line settings shared by every mode. Included by main.cpp only.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "eftd/pos/client.hpp"
#include "failover.hpp"

namespace eft_pos_sim {

struct settings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // with --host: the first server
  // --server host:port, repeatable: the active/standby pair (issue 8), tried in this order.
  std::vector<endpoint> servers;
  // Recovery after a lost transaction: status_query again this often while `in_progress`
  // (or while the till is still in use on the old connection), for at most recover_ms.
  int status_retry_ms = 2000;
  int recover_ms = 120000;
  std::string till;
  std::string operator_id;
  std::string client_name = "eft-pos-sim";
  bool json = false;
  int connect_timeout_ms = 5000;
  int inactivity_timeout_ms = 30000;
  std::vector<std::string> answers;
  // TLS: on with --tls or any --tls-* file option.
  bool tls = false;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;

  // --host/--port first (when --port was given), then every --server.
  std::vector<endpoint> server_list() const {
    std::vector<endpoint> out;
    if (port != 0) out.push_back(endpoint{host, port});
    for (const auto& e : servers) {
      if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
    }
    return out;
  }

  bool use_tls() const { return tls || !tls_ca.empty() || !tls_cert.empty() || !tls_key.empty(); }

  eftd::pos::client_options client_options() const {
    eftd::pos::client_options o;
    o.inactivity_timeout = std::chrono::milliseconds(inactivity_timeout_ms);
    if (use_tls()) o.tls = eftd::pos::tls_options{tls_ca, tls_cert, tls_key, tls_server_name, true};
    return o;
  }

  eftd::pos::login login_request(std::vector<std::string> capabilities = {}) const {
    eftd::pos::login req;
    req.till_id = till;
    req.operator_id = operator_id;
    req.client = client_name;
    req.capabilities = std::move(capabilities);
    return req;
  }
};

}  // namespace eft_pos_sim
