// cpp-httplib glue of the configuration API.
#include "api/api_server.h"

#include <fcntl.h>
#include <httplib.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>

#include "api/request_guard.h"
#include "web/web_hub.h"
#include "web/web_routes.h"

namespace ecapture::api {

struct ApiServer::Impl {
  httplib::Server server;
  std::string token;
  std::string address;
  ListenAddress listen;
};

namespace {
void reply(httplib::Response& res, const ApiResponse& r) {
  res.status = r.http_status;
  res.set_content(r.body.dump() + "\n", "application/json");
}
}  // namespace

ApiServer::ApiServer(std::shared_ptr<spdlog::logger> log) : log_(std::move(log)) {}

ApiServer::~ApiServer() { stop(); }

Result<void> ApiServer::bind(const ListenAddress& addr, std::string token) {
  if (impl_) return make_error("the API server is already bound");
  impl_ = std::make_unique<Impl>();
  impl_->token = std::move(token);
  httplib::Server& s = impl_->server;
  impl_->listen = addr;
  s.set_payload_max_length(1 << 20);  // larger bodies: 413
  // Live web pages hold a worker each (at most WebOptions::max_clients): room for the API.
  s.new_task_queue = [] { return new httplib::ThreadPool(12); };
  web::add_security_headers(s);
  s.set_keep_alive_timeout(1);  // bounds how long stop() waits for idle keep-alive clients
  s.set_read_timeout(5, 0);
  s.set_write_timeout(5, 0);
  // SO_REUSEADDR only: httplib's default SO_REUSEPORT would let a second process share the port.
  s.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    ::fcntl(sock, F_SETFD, FD_CLOEXEC);
  });

  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    GuardedRequest g;
    g.method = req.method;
    g.has_host = req.has_header("Host");
    std::string host = req.get_header_value("Host");
    std::string origin = req.get_header_value("Origin");
    std::string content_type = req.get_header_value("Content-Type");
    g.host = host;
    g.has_origin = req.has_header("Origin");
    g.origin = origin;
    g.content_type = content_type;
    if (auto refused = check_request(g, impl_->listen, port_)) {
      reply(res, make_response(refused->http_status,
                               refused->http_status == 415 ? RespCode::kDecodeFailed
                                                           : RespCode::kInvalidRequest,
                               "", refused->message));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (impl_->token.empty() || (web_ != nullptr && web::is_public_path(req.path)) ||
        bearer_matches(req.get_header_value("Authorization"), impl_->token)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    res.set_header("WWW-Authenticate", "Bearer");
    reply(res, make_response(401, RespCode::kInvalidRequest, "",
                             "missing or wrong token: send 'Authorization: Bearer <token>' with "
                             "the token given to --listen-token"));
    return httplib::Server::HandlerResponse::Handled;
  });
  if (web_ != nullptr) web::install_web_routes(s, *web_, web_config_);
  s.Get(".*", [this](const httplib::Request& req, httplib::Response& res) {
    if (handler_ == nullptr) {
      reply(res, make_response(503, RespCode::kBusy, "", "ecapture is shutting down"));
    } else if (req.path == "/status") {
      reply(res, handler_->status());
    } else if (req.path == "/healthz") {
      reply(res, handler_->healthz());
    } else if (req.path == "/metrics") {
      res.set_content(handler_->metrics(), "text/plain; version=0.0.4; charset=utf-8");
    } else {
      reply(res, handler_->not_found("GET", req.path));
    }
  });
  s.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
    if (handler_ == nullptr) {
      reply(res, make_response(503, RespCode::kBusy, "", "ecapture is shutting down"));
    } else {
      reply(res, handler_->post_config(req.path, req.body));
    }
  });
  s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    // The page's own traffic (files, rows, the stream) would drown the log.
    if (res.status == 200 && req.method == "GET" &&
        (req.path.rfind("/api/", 0) == 0 || web::is_public_path(req.path))) {
      return;
    }
    log_->info("api: {} {} from {} → {}", req.method, req.path, req.remote_addr, res.status);
  });

  errno = 0;
  int port = addr.port;
  if (addr.port == 0) {
    port = s.bind_to_any_port(addr.host);
  } else if (!s.bind_to_port(addr.host, addr.port)) {
    port = -1;
  }
  if (port <= 0) {
    int err = errno;
    impl_.reset();
    return make_errno_error(err, "cannot listen on {} (--listen)", addr.to_string());
  }
  port_ = static_cast<uint16_t>(port);
  impl_->address = ListenAddress{addr.host, port_}.to_string();
  return {};
}

void ApiServer::wait_running() {
  // httplib's stop() only takes effect once the serving loop runs.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!impl_->server.is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void ApiServer::serve(ApiHandler& handler) {
  if (!impl_ || thread_.joinable()) return;
  handler_ = &handler;  // published to the server threads by the thread start below
  thread_ = std::thread([this] { impl_->server.listen_after_bind(); });
  wait_running();
  log_->info("configuration API listening on {}{}", impl_->address,
             impl_->token.empty() ? "" : " (bearer token required)");
}

void ApiServer::stop() {
  if (!impl_) return;
  if (handler_ != nullptr) handler_->shut_down();
  if (web_ != nullptr) web_->stop_streams();  // live pages hold server threads
  // httplib closes a bound socket only from its serving loop: run it briefly if never served.
  if (!thread_.joinable()) {
    ApiHandler* none = nullptr;
    std::swap(handler_, none);
    thread_ = std::thread([this] { impl_->server.listen_after_bind(); });
    wait_running();
  }
  impl_->server.stop();
  thread_.join();
  impl_.reset();
  handler_ = nullptr;
}

}  // namespace ecapture::api
