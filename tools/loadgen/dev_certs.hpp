// Development client certificates issued in memory by eft-loadgen: ten thousand tills need
// twenty thousand certificates, and tools/pos-certs / tools/pad-certs (two openssl processes
// each) would take minutes to make them. Given a directory holding the development CA those
// scripts made (ca.pem and ca.key), eft-loadgen issues the certificate of a till or pad it has
// no file for: a fresh P-256 key, subject CN = the till id or pad serial, clientAuth, signed by
// the CA. For load tests only: production certificates come from the retailer's PKI.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "eftd/core/result.hpp"

namespace eftd::loadgen {

struct issued_cert {
  std::string cert_pem;
  std::string key_pem;
};

class dev_ca {
 public:
  // dir/ca.pem and dir/ca.key. Error loadgen.tls_ca when either is missing or unreadable.
  static result<std::shared_ptr<const dev_ca>> open(const std::filesystem::path& dir);
  ~dev_ca();
  dev_ca(const dev_ca&) = delete;
  dev_ca& operator=(const dev_ca&) = delete;

  // A new key and a certificate for `common_name`, valid from an hour ago for a day.
  result<issued_cert> issue(std::string_view common_name) const;

 private:
  struct impl;
  explicit dev_ca(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace eftd::loadgen
