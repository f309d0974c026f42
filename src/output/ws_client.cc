// ws:// client writer over websocketpp (asio, no TLS). Built as C++17 like ecaptureq_server.cc:
// websocketpp 0.8 does not compile as C++20.
//
// Threads: the QueuedWriter sender thread (connect_link/send_item/drop_link) and one asio thread
// that owns every websocketpp object; the sender hands work to it with post() and waits for the
// result, so the library is only ever touched from its own thread. Capture never waits: write()
// only queues (bounded, QueuedWriter).
#include "output/ws_client.h"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

// Standalone asio (libasio-dev), not Boost's.
#define ASIO_STANDALONE 1
#define _WEBSOCKETPP_CPP11_STL_ 1
#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>
#include <websocketpp/utf8_validator.hpp>

#include "output/writers.h"

namespace ecapture {

std::string WsUrl::uri() const {
  bool v6 = host.find(':') != std::string::npos;
  return "ws://" + (v6 ? "[" + host + "]" : host) + ":" + port + path;
}

Result<WsUrl> parse_ws_url(std::string_view url) {
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return make_error("{}: a ws:// URL cannot contain spaces or control characters", url);
    }
  }
  if (url.rfind("wss://", 0) == 0) {
    return make_error(
        "{}: wss:// (TLS) is not supported: use ws://host:port/path or "
        "tcp://host:port",
        url);
  }
  if (url.rfind("ws://", 0) != 0) return make_error("{}: not a ws://host:port/path URL", url);
  ASSIGN_OR_RETURN(ParsedUrl u, parse_url(url));
  unsigned long port = u.port.size() <= 5 ? std::stoul(u.port) : 0;
  if (port == 0 || port > 65535) return make_error("{}: port {} is not in 1..65535", url, u.port);
  WsUrl w;
  w.host = u.host;
  w.port = std::to_string(port);
  w.path = u.path.empty() ? "/" : u.path;
  return w;
}

namespace {

using WsEndpoint = websocketpp::client<websocketpp::config::asio_client>;
using Hdl = websocketpp::connection_hdl;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class WsClientWriter final : public QueuedWriter {
 public:
  static Result<std::unique_ptr<Writer>> create(const std::string& url, size_t max_queue_bytes) {
    ASSIGN_OR_RETURN(WsUrl u, parse_ws_url(url));
    std::unique_ptr<WsClientWriter> w(new WsClientWriter(url, u.uri(), max_queue_bytes));
    WsEndpoint& c = w->client_;
    c.clear_access_channels(websocketpp::log::alevel::all);  // it would print to stdout
    c.clear_error_channels(websocketpp::log::elevel::all);
    websocketpp::lib::error_code ec;
    c.init_asio(ec);
    if (ec) return make_error("{}: cannot set up the WebSocket client: {}", url, ec.message());
    c.set_user_agent("ecapture");
    c.start_perpetual();
    w->io_ = std::thread([p = w.get()] { p->client_.run(); });
    w->start();
    return std::unique_ptr<Writer>(std::move(w));
  }

  ~WsClientWriter() override { close(); }

  // Sends what is queued while the peer takes it, at most about 1 s, then closes the connection
  // (close handshake within the same second) and releases the thread and socket.
  void close() override {
    {
      std::lock_guard lock(link_mu_);
      if (closing_) return;
      closing_ = true;
      close_deadline_ = Clock::now() + std::chrono::seconds(1);
    }
    QueuedWriter::close();  // joins the sender thread (its last drop_link closed the link)
    client_.stop_perpetual();
    client_.stop();
    if (io_.joinable()) io_.join();
    con_.reset();
  }

  bool framed() const override { return true; }
  std::string name() const override { return url_; }

  // Unsent bytes the library may hold before send_item waits for the peer.
  static constexpr size_t kMaxInFlight = 256u << 10;

 protected:
  bool connect_link() override {
    uint64_t gen;
    {
      std::lock_guard lock(link_mu_);
      gen = ++gen_;
      link_ = Link::kConnecting;
      buffered_ = 0;
    }
    asio::post(client_.get_io_service(), [this, gen] {
      websocketpp::lib::error_code ec;
      WsEndpoint::connection_ptr con = client_.get_connection(uri_, ec);
      if (ec || !con) {
        set_link(gen, Link::kClosed);
        return;
      }
      con->set_open_handshake_timeout(1000);
      con->set_close_handshake_timeout(500);
      con->set_open_handler([this, gen](Hdl) { set_link(gen, Link::kOpen); });
      con->set_fail_handler([this, gen](Hdl) { set_link(gen, Link::kClosed); });
      con->set_close_handler([this, gen](Hdl) { set_link(gen, Link::kClosed); });
      con->set_message_handler([](Hdl, WsEndpoint::message_ptr) {});  // nothing to read
      con_ = con;
      client_.connect(con);
    });
    std::unique_lock lock(link_mu_);
    link_cv_.wait_for(lock, milliseconds(2000),
                      [&] { return gen_ != gen || link_ != Link::kConnecting; });
    if (gen_ == gen && link_ == Link::kOpen) return true;
    lock.unlock();
    abandon();
    return false;
  }

  bool send_item(const Item& item) override {
    uint64_t gen;
    {
      std::lock_guard lock(link_mu_);
      if (link_ != Link::kOpen) return false;
      gen = gen_;
    }
    // RFC 6455 text frames carry UTF-8; text output of binary payloads goes as a binary frame.
    bool binary = item.binary || !websocketpp::utf8_validator::validate(item.bytes);
    auto op = binary ? websocketpp::frame::opcode::binary : websocketpp::frame::opcode::text;
    auto sent = on_io<bool>([this, gen, op, bytes = item.bytes] {
      if (!con_ || !current(gen)) return false;
      if (con_->send(bytes, op)) return false;
      note_buffered(con_->get_buffered_amount());
      return true;
    });
    if (!sent.value_or(false)) return false;
    // Backpressure: wait while the peer is behind; the queue in front of us absorbs (and
    // counts) what capture produces meanwhile. When asked to stop, a stalled peer is given up.
    size_t last = kMaxInFlight + 1;
    auto progress = Clock::now();
    for (;;) {
      {
        std::lock_guard lock(link_mu_);
        if (gen_ != gen || link_ != Link::kOpen) return true;  // the next send notices
        if (buffered_ <= kMaxInFlight) return true;
        if (buffered_ < last) {
          last = buffered_;
          progress = Clock::now();
        }
      }
      if (stopping() && Clock::now() - progress > milliseconds(200)) return false;
      std::this_thread::sleep_for(milliseconds(10));
      refresh_buffered(gen);
    }
  }

  void drop_link() override {
    uint64_t gen;
    Clock::time_point deadline;
    bool final_drop;
    {
      std::lock_guard lock(link_mu_);
      gen = gen_;
      final_drop = closing_;
      deadline = close_deadline_;
    }
    if (final_drop) {
      // Let the library write what it holds, then close politely, all before the deadline.
      for (;;) {
        {
          std::lock_guard lock(link_mu_);
          if (gen_ != gen || link_ != Link::kOpen || buffered_ == 0) break;
        }
        if (Clock::now() >= deadline) break;
        std::this_thread::sleep_for(milliseconds(10));
        refresh_buffered(gen);
      }
    }
    on_io<bool>([this, gen] {
      if (!con_ || !current(gen)) return false;
      websocketpp::lib::error_code ec;
      if (con_->get_state() == websocketpp::session::state::open) {
        con_->close(websocketpp::close::status::going_away, "ecapture exiting", ec);
      }
      return true;
    });
    if (final_drop) {
      std::unique_lock lock(link_mu_);
      link_cv_.wait_until(lock, deadline, [&] { return gen_ != gen || link_ != Link::kOpen; });
    }
    abandon();
  }

 private:
  enum class Link { kNone, kConnecting, kOpen, kClosed };

  WsClientWriter(std::string url, std::string uri, size_t max_queue_bytes)
      : QueuedWriter(max_queue_bytes), url_(std::move(url)), uri_(std::move(uri)) {}

  // Runs fn on the asio thread and waits for its result (at most 1 s). fn captures by value.
  template <typename T>
  std::optional<T> on_io(std::function<T()> fn) {
    auto task = std::make_shared<std::packaged_task<T()>>(std::move(fn));
    std::future<T> result = task->get_future();
    asio::post(client_.get_io_service(), [task] { (*task)(); });
    if (result.wait_for(milliseconds(1000)) != std::future_status::ready) return std::nullopt;
    return result.get();
  }

  // asio thread: handler of connection `gen`; stale connections are ignored.
  void set_link(uint64_t gen, Link state) {
    {
      std::lock_guard lock(link_mu_);
      if (gen != gen_) return;
      link_ = state;
    }
    link_cv_.notify_all();
  }

  bool current(uint64_t gen) {
    std::lock_guard lock(link_mu_);
    return gen == gen_;
  }

  void note_buffered(size_t n) {
    std::lock_guard lock(link_mu_);
    buffered_ = n;
  }

  void refresh_buffered(uint64_t gen) {
    on_io<bool>([this, gen] {
      if (!con_ || !current(gen)) return false;
      note_buffered(con_->get_buffered_amount());
      return true;
    });
  }

  // Forgets the current connection (the library finishes or times out its close on its own).
  void abandon() {
    {
      std::lock_guard lock(link_mu_);
      ++gen_;
      link_ = Link::kNone;
      buffered_ = 0;
    }
    on_io<bool>([this] {
      con_.reset();
      return true;
    });
  }

  std::string url_, uri_;
  WsEndpoint client_;
  std::thread io_;
  WsEndpoint::connection_ptr con_;  // asio thread only (and after it was joined)

  std::mutex link_mu_;
  std::condition_variable link_cv_;
  uint64_t gen_ = 0;  // the connection attempt handlers may report on
  Link link_ = Link::kNone;
  size_t buffered_ = 0;  // unsent bytes the library holds (last look)
  bool closing_ = false;
  Clock::time_point close_deadline_{};
};

}  // namespace

Result<std::unique_ptr<Writer>> make_ws_client_writer(const std::string& url,
                                                      size_t max_queue_bytes) {
  return WsClientWriter::create(url, max_queue_bytes);
}

}  // namespace ecapture
