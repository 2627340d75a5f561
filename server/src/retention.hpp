// Journal retention in eftd: the daily purge of orders older than [journal] retention_days,
// and the purge the admin socket asks for. What a purge removes and keeps:
// eftd/journal/retention.hpp.
#pragma once

#include <boost/asio.hpp>
#include <memory>
#include <string>

#include "context.hpp"
#include "eftd/journal/retention.hpp"

namespace eftd::server {

// Runs a purge on the journal writer's thread (steps between the sales' commits) and resumes
// on the caller's executor with the counts.
boost::asio::awaitable<result<journal::purge_report>> purge_journal(server_context& ctx,
                                                                    journal::purge_request req);

// The business date a retention of `days` keeps: orders of earlier dates are due.
std::string retention_cutoff(std::int64_t now_ms, std::uint32_t days);

class retention_service {
 public:
  explicit retention_service(server_context& ctx);
  ~retention_service();

  // With retention_days > 0: purges once a day, 30 minutes after the settlement cut-over
  // when [settlement] cutover is set (the batches closed then become purgeable), else at
  // start and every 24 hours. Each purge is written to the audit log (actor "eftd").
  void start();
  void stop();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace eftd::server
