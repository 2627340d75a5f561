// The smallest valid eftd configuration: one merchant (M001) with a store (S01), a pad (P01)
// and a till (T01), one acquirer (a1) and a route to it. Configuration tests append the tables
// they are about, so that each one sets or breaks exactly one thing.
#pragma once

#include <string>

namespace eftd::test {

inline const std::string minimal_config_toml = R"(
[[merchants]]
id = "M001"
acquirer_merchant_id = "MERCHANT0000001"
currency = "PLN"

[[stores]]
id = "S01"
merchant = "M001"

[[pads]]
id = "P01"
serial = "VP-0001"

[[tills]]
id = "T01"
store = "S01"
pad = "P01"
terminal_id = "TERM0001"

[[acquirers]]
name = "a1"
port = 5000

[[routes]]
bin_prefix = ""
acquirer = "a1"
)";

}  // namespace eftd::test
