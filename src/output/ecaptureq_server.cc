// eCaptureQ server over websocketpp (asio, no TLS).
#include "output/ecaptureq_server.h"

#include <chrono>
#include <map>

// Standalone asio (libasio-dev), not Boost's.
#define ASIO_STANDALONE 1
#define _WEBSOCKETPP_CPP11_STL_ 1
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

#include "output/encoders.h"

namespace ecapture {

using WsServer = websocketpp::server<websocketpp::config::asio>;
using Handle = websocketpp::connection_hdl;

struct EcaptureqServer::Impl {
  WsServer server;
  std::thread thread;
  mutable std::mutex mu;
  struct Client {
    int64_t heartbeats = 0;
    std::shared_ptr<asio::steady_timer> timer;  // the next heartbeat, 15 s after the last one
  };
  std::map<Handle, Client, std::owner_less<Handle>> clients;
  std::deque<std::string> replay;  // serialized LogEntry run_log messages
  bool stopped = false;

  // Caller holds mu. Returns false when the client's buffer is full (message dropped).
  bool send(Handle h, const std::string& bytes) {
    websocketpp::lib::error_code ec;
    auto con = server.get_con_from_hdl(h, ec);
    if (ec || !con) return false;
    if (con->get_buffered_amount() > kClientBufferBytes) return false;
    con->send(bytes, websocketpp::frame::opcode::binary);
    return true;
  }

  void heartbeat(Handle h, Client& c) {
    auto now = std::chrono::system_clock::now().time_since_epoch();
    send(h, encode_heartbeat_protobuf(std::chrono::duration_cast<std::chrono::seconds>(now).count(),
                                      ++c.heartbeats));
  }

  // io thread, caller holds mu: each client's heartbeats count from its own connect.
  void arm_timer(Handle h, Client& c) {
    c.timer->expires_after(std::chrono::seconds(15));
    c.timer->async_wait([this, h](const std::error_code& ec) {
      if (ec) return;  // cancelled: the client left or we are closing
      std::lock_guard lock(mu);
      auto it = clients.find(h);
      if (it == clients.end() || stopped) return;
      heartbeat(h, it->second);
      arm_timer(h, it->second);
    });
  }
};

EcaptureqServer::EcaptureqServer(std::string url) : url_(std::move(url)), impl_(new Impl) {}

Result<std::shared_ptr<EcaptureqServer>> EcaptureqServer::start(const std::string& url) {
  ASSIGN_OR_RETURN(ParsedUrl u, parse_url(url));
  if (u.scheme != "ws") {
    return make_error("--ecaptureq {}: only ws://host:port/ is served (no TLS)", url);
  }
  std::shared_ptr<EcaptureqServer> s(new EcaptureqServer(url));
  Impl& impl = *s->impl_;
  WsServer& srv = impl.server;
  srv.clear_access_channels(websocketpp::log::alevel::all);
  srv.clear_error_channels(websocketpp::log::elevel::all);
  websocketpp::lib::error_code ec;
  srv.init_asio(ec);
  if (ec) return make_error("--ecaptureq {}: {}", url, ec.message());
  srv.set_reuse_addr(true);
  srv.set_open_handler([&impl](Handle h) {
    std::lock_guard lock(impl.mu);
    auto& c = impl.clients[h];
    impl.heartbeat(h, c);
    c.timer = std::make_shared<asio::steady_timer>(impl.server.get_io_service());
    impl.arm_timer(h, c);
    for (const auto& line : impl.replay) impl.send(h, line);
  });
  auto gone = [&impl](Handle h) {
    std::lock_guard lock(impl.mu);
    auto it = impl.clients.find(h);
    if (it == impl.clients.end()) return;
    if (it->second.timer) it->second.timer->cancel();
    impl.clients.erase(it);
  };
  srv.set_close_handler(gone);
  srv.set_fail_handler(gone);
  srv.set_message_handler([](Handle, WsServer::message_ptr) {});  // clients have nothing to say

  asio::ip::tcp::resolver resolver(srv.get_io_service());
  auto endpoints = resolver.resolve(u.host, u.port, ec);
  if (ec || endpoints.empty()) {
    return make_error("--ecaptureq {}: cannot resolve {}: {}", url, u.host, ec.message());
  }
  srv.listen(endpoints.begin()->endpoint(), ec);
  if (ec) {
    return make_error("--ecaptureq {}: cannot listen on {}:{}: {} (is the port in use?)", url,
                      u.host, u.port, ec.message());
  }
  srv.start_accept(ec);
  if (ec) return make_error("--ecaptureq {}: {}", url, ec.message());
  impl.thread = std::thread([&impl] { impl.server.run(); });
  return s;
}

EcaptureqServer::~EcaptureqServer() { close(); }

void EcaptureqServer::write(std::string_view bytes, bool /*binary*/) {
  std::string msg(bytes);
  std::lock_guard lock(impl_->mu);
  if (impl_->stopped) return;
  for (auto& [h, c] : impl_->clients) {
    if (impl_->send(h, msg)) {
      ++messages_;
      bytes_ += msg.size();
    } else {
      ++dropped_;
      dropped_bytes_ += msg.size();
    }
  }
}

void EcaptureqServer::log_line(std::string_view line) {
  std::string msg = encode_log_protobuf(line);
  std::lock_guard lock(impl_->mu);
  if (impl_->stopped) return;
  if (impl_->replay.size() < kReplayLines) impl_->replay.push_back(msg);
  for (auto& [h, c] : impl_->clients) impl_->send(h, msg);
}

size_t EcaptureqServer::clients() const {
  std::lock_guard lock(impl_->mu);
  return impl_->clients.size();
}

void EcaptureqServer::close() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  // Everything runs on the io thread: stop listening, close clients (after what they were sent),
  // then let run() return.
  asio::post(impl_->server.get_io_service(), [this] {
    websocketpp::lib::error_code ec;
    impl_->server.stop_listening(ec);
    std::lock_guard lock(impl_->mu);
    for (auto& [h, c] : impl_->clients) {
      if (c.timer) c.timer->cancel();
      impl_->server.close(h, websocketpp::close::status::going_away, "ecapture exiting", ec);
    }
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (clients() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace ecapture
