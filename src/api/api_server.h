// The HTTP server of the configuration API (--listen): cpp-httplib on one listening thread and its
// worker pool, routing to ApiHandler, bearer-token check, clean stop and join.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include <spdlog/logger.h>

#include "api/api_handler.h"
#include "api/listen_address.h"

namespace ecapture::api {

class ApiServer {
 public:
  ApiServer(ApiHandler& handler, std::shared_ptr<spdlog::logger> log);
  ~ApiServer();  // stop()
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds (port 0: any free port) and serves from a thread. A non-empty token is required from
  // every client as `Authorization: Bearer <token>`.
  Result<void> start(const ListenAddress& addr, std::string token);
  // Idempotent: answers pending requests with 503, closes the socket, joins every thread.
  void stop();
  uint16_t port() const { return port_; }

 private:
  struct Impl;
  ApiHandler& handler_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace ecapture::api
