// The HTTP server of the configuration API (--listen): cpp-httplib on one listening thread and its
// worker pool, routing to ApiHandler, bearer-token check, clean stop and join.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <spdlog/logger.h>

#include "api/api_handler.h"
#include "api/listen_address.h"

namespace ecapture::web {
class WebHub;
}

namespace ecapture::api {

class ApiServer {
 public:
  explicit ApiServer(std::shared_ptr<spdlog::logger> log);
  ~ApiServer();  // stop()
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds the address (port 0: any free port), so that a taken port fails at start-up before
  // anything else starts. A non-empty token is required from every client as
  // `Authorization: Bearer <token>`.
  Result<void> bind(const ListenAddress& addr, std::string token);
  // Serves the web view (src/web/) too; call before bind(). `config` gives the running module's
  // configuration.
  void set_web(web::WebHub* hub, std::function<nlohmann::json()> config) {
    web_ = hub;
    web_config_ = std::move(config);
  }
  // Serves requests from a thread until stop(). Requires bind().
  void serve(ApiHandler& handler);
  // Idempotent: answers pending requests with 503, closes the socket, joins every thread.
  void stop();
  uint16_t port() const { return port_; }

 private:
  struct Impl;
  void wait_running();

  std::shared_ptr<spdlog::logger> log_;
  ApiHandler* handler_ = nullptr;
  web::WebHub* web_ = nullptr;
  std::function<nlohmann::json()> web_config_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace ecapture::api
