// ws:// client writer: URL parsing, and the writer against a minimal RFC 6455 server on
// 127.0.0.1 (handshake, masked frames, close) written here with plain sockets.
#include "output/ws_client.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "output/writers.h"

namespace ecapture {
namespace {

// ---- URL parsing --------------------------------------------------------------------------------

TEST(WsUrlTest, HostPortPath) {
  auto u = parse_ws_url("ws://127.0.0.1:8080/events/x?a=1");
  ASSERT_TRUE(u) << u.error().to_string();
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->path, "/events/x?a=1");
  EXPECT_EQ(u->uri(), "ws://127.0.0.1:8080/events/x?a=1");
}

TEST(WsUrlTest, DefaultPathIsSlash) {
  auto u = parse_ws_url("ws://localhost:1");
  ASSERT_TRUE(u) << u.error().to_string();
  EXPECT_EQ(u->host, "localhost");
  EXPECT_EQ(u->port, "1");
  EXPECT_EQ(u->path, "/");
  EXPECT_EQ(u->uri(), "ws://localhost:1/");
}

TEST(WsUrlTest, Ipv6HostKeepsBracketsInUri) {
  auto u = parse_ws_url("ws://[::1]:65535/p");
  ASSERT_TRUE(u) << u.error().to_string();
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "65535");
  EXPECT_EQ(u->uri(), "ws://[::1]:65535/p");
}

TEST(WsUrlTest, LeadingZerosInPortAreNormalised) {
  auto u = parse_ws_url("ws://h:00080/");
  ASSERT_TRUE(u) << u.error().to_string();
  EXPECT_EQ(u->port, "80");
}

TEST(WsUrlTest, WssIsRefusedWithAHint) {
  auto u = parse_ws_url("wss://example.com:443/");
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().to_string(),
            "wss://example.com:443/: wss:// (TLS) is not supported: use ws://host:port/path or "
            "tcp://host:port");
}

TEST(WsUrlTest, BadUrlsAreErrorsNamingTheUrl) {
  for (const char* bad : {"http://h:1/", "ws:/h:1", "ws://h/", "ws://h:/", "ws://:80/", "ws://h:0/",
                          "ws://h:65536/", "ws://h:123456/", "ws://h:8x/", "ws://[::1/",
                          "ws://h:80/a b", "ws://h:80/\n", "tcp://h:1", ""}) {
    auto u = parse_ws_url(bad);
    EXPECT_FALSE(u) << bad;
    if (!u && *bad) {
      EXPECT_EQ(u.error().to_string().rfind(std::string(bad).substr(0, 5), 0), 0u)
          << u.error().to_string();
    }
  }
}

TEST(WsUrlTest, MakeWriterRefusesWssInOneLine) {
  auto w = make_ws_client_writer("wss://127.0.0.1:9/", 1024);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().to_string().find('\n'), std::string::npos);
  EXPECT_NE(w.error().to_string().find("not supported"), std::string::npos);
}

// ---- the writer against a minimal server
// ----------------------------------------------------------

size_t count_dir(const char* path) {
  size_t n = 0;
  if (DIR* d = opendir(path)) {
    while (readdir(d) != nullptr) ++n;
    closedir(d);
  }
  return n;
}

std::string accept_key(const std::string& key) {
  std::string in = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), digest);
  unsigned char out[64];
  int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

int listen_on(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 4) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

uint16_t port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

struct Frame {
  int opcode;
  std::string payload;
};

// Accepts one client, checks the upgrade, collects whole messages until the client's close frame.
class MiniServer {
 public:
  // Hangs up without a close frame after `hang_up_after` messages (0: never).
  explicit MiniServer(uint16_t port = 0, size_t hang_up_after = 0)
      : fd_(listen_on(port)), hang_up_after_(hang_up_after) {
    if (fd_ >= 0) thread_ = std::thread([this] { run(); });
  }
  ~MiniServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  uint16_t port() const { return port_of(fd_); }
  bool wait_done(std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (!done_ && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done_;
  }
  std::string request;
  std::vector<Frame> messages;
  int close_code = -1;

 private:
  bool read_some(int c, std::string& buf) {
    while (!stop_) {
      pollfd p{c, POLLIN, 0};
      int r = poll(&p, 1, 50);
      if (r == 0) continue;
      char tmp[65536];
      ssize_t n = recv(c, tmp, sizeof(tmp), 0);
      if (n <= 0) return false;
      buf.append(tmp, static_cast<size_t>(n));
      return true;
    }
    return false;
  }
  bool need(int c, std::string& buf, size_t n) {
    while (buf.size() < n) {
      if (!read_some(c, buf)) return false;
    }
    return true;
  }
  void run() {
    int c = -1;
    while (!stop_ && c < 0) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) == 1) c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    }
    if (c < 0) return;
    std::string buf;
    while (buf.find("\r\n\r\n") == std::string::npos) {
      if (!read_some(c, buf)) break;
    }
    auto end = buf.find("\r\n\r\n");
    if (end == std::string::npos) {
      close(c);
      return;
    }
    request = buf.substr(0, end);
    buf.erase(0, end + 4);
    std::string key;
    auto k = request.find("Sec-WebSocket-Key: ");
    if (k != std::string::npos) key = request.substr(k + 19, request.find("\r\n", k) - k - 19);
    std::string resp =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
        accept_key(key) + "\r\n\r\n";
    send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
    std::string msg;
    int msg_op = 0;
    for (;;) {
      if (!need(c, buf, 2)) break;
      auto b0 = static_cast<uint8_t>(buf[0]), b1 = static_cast<uint8_t>(buf[1]);
      size_t hdr = 2;
      uint64_t len = b1 & 0x7f;
      if (len == 126) {
        if (!need(c, buf, 4)) break;
        len = (uint64_t{static_cast<uint8_t>(buf[2])} << 8) | static_cast<uint8_t>(buf[3]);
        hdr = 4;
      } else if (len == 127) {
        if (!need(c, buf, 10)) break;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<uint8_t>(buf[2 + i]);
        hdr = 10;
      }
      bool masked = b1 & 0x80;
      if (!masked) break;  // RFC 6455 5.1: a client masks every frame
      if (!need(c, buf, hdr + 4 + len)) break;
      std::string payload = buf.substr(hdr + 4, len);
      for (size_t i = 0; i < payload.size(); ++i) payload[i] ^= buf[hdr + (i % 4)];
      buf.erase(0, hdr + 4 + len);
      int op = b0 & 0x0f;
      if (op == 0x8) {
        if (payload.size() >= 2) {
          close_code = (static_cast<uint8_t>(payload[0]) << 8) | static_cast<uint8_t>(payload[1]);
        }
        std::string reply = std::string("\x88\x02", 2) + payload.substr(0, 2);
        send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
        break;
      }
      if (op != 0) msg_op = op;
      msg += payload;
      if (b0 & 0x80) {
        messages.push_back(Frame{msg_op, msg});
        msg.clear();
        if (hang_up_after_ && messages.size() == hang_up_after_) break;
      }
    }
    close(c);
    done_ = true;
  }

  int fd_;
  size_t hang_up_after_;
  std::atomic<bool> stop_{false}, done_{false};
  std::thread thread_;
};

TEST(WsClientWriterTest, DeliversEachMessageAsOneFrameAndClosesCleanly) {
  size_t fds = count_dir("/proc/self/fd"), threads = count_dir("/proc/self/task");
  std::string big(70000, 'b'), mid(300, 'm');
  {
    MiniServer server;
    ASSERT_TRUE(server.ok());
    {
      auto w = make_ws_client_writer("ws://127.0.0.1:" + std::to_string(server.port()) + "/events",
                                     1u << 20);
      ASSERT_TRUE(w) << w.error().to_string();
      EXPECT_TRUE((*w)->framed());
      auto up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
      while ((*w)->stats().connects == 0 && std::chrono::steady_clock::now() < up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      ASSERT_EQ((*w)->stats().connects, 1u);
      (*w)->write("hello\n", false);
      (*w)->write(std::string("\x00\x01\xff", 3), true);
      (*w)->write("\xff\xfe not utf-8", false);
      (*w)->write(big, false);
      (*w)->write(mid, true);
      auto t0 = std::chrono::steady_clock::now();
      (*w)->close();
      EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1500));
      WriterStats s = (*w)->stats();
      EXPECT_EQ(s.messages, 5u);
      EXPECT_EQ(s.dropped, 0u);
      EXPECT_EQ(s.connects, 1u);
      EXPECT_EQ(s.bytes, 6u + 3u + 12u + big.size() + mid.size());
    }
    ASSERT_TRUE(server.wait_done(std::chrono::seconds(3)));
    EXPECT_EQ(server.request.rfind("GET /events HTTP/1.1\r\n", 0), 0u) << server.request;
    ASSERT_EQ(server.messages.size(), 5u);
    EXPECT_EQ(server.messages[0].opcode, 1);
    EXPECT_EQ(server.messages[0].payload, "hello\n");
    EXPECT_EQ(server.messages[1].opcode, 2);
    EXPECT_EQ(server.messages[1].payload, std::string("\x00\x01\xff", 3));
    EXPECT_EQ(server.messages[2].opcode, 2) << "invalid UTF-8 cannot be a text frame";
    EXPECT_EQ(server.messages[2].payload, "\xff\xfe not utf-8");
    EXPECT_EQ(server.messages[3].opcode, 1);
    EXPECT_EQ(server.messages[3].payload, big);
    EXPECT_EQ(server.messages[4].opcode, 2);
    EXPECT_EQ(server.messages[4].payload, mid);
    EXPECT_EQ(server.close_code, 1001);  // going away
  }
  EXPECT_EQ(count_dir("/proc/self/fd"), fds);
  EXPECT_EQ(count_dir("/proc/self/task"), threads);
}

TEST(WsClientWriterTest, UnreachablePeerCostsCountedDropsNotAStall) {
  size_t fds = count_dir("/proc/self/fd"), threads = count_dir("/proc/self/task");
  int probe = listen_on(0);
  ASSERT_GE(probe, 0);
  uint16_t port = port_of(probe);
  close(probe);  // nothing listens there now
  {
    auto w = make_ws_client_writer("ws://127.0.0.1:" + std::to_string(port) + "/", 1000);
    ASSERT_TRUE(w) << w.error().to_string();
    std::string m(400, 'x');
    for (int i = 0; i < 3; ++i) (*w)->write(m, false);  // the third does not fit in 1000 bytes
    EXPECT_EQ((*w)->stats().dropped, 1u);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto t0 = std::chrono::steady_clock::now();
    (*w)->close();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1500));
    WriterStats s = (*w)->stats();
    EXPECT_EQ(s.messages, 0u);
    EXPECT_EQ(s.connects, 0u);
    EXPECT_EQ(s.dropped, 3u) << "what was still queued at close counts as dropped";
    EXPECT_EQ(s.dropped_bytes, 1200u);
  }
  EXPECT_EQ(count_dir("/proc/self/fd"), fds);
  EXPECT_EQ(count_dir("/proc/self/task"), threads);
}

TEST(WsClientWriterTest, ConnectsOnceTheServerComesUp) {
  int probe = listen_on(0);
  ASSERT_GE(probe, 0);
  uint16_t port = port_of(probe);
  close(probe);
  auto w = make_ws_client_writer("ws://127.0.0.1:" + std::to_string(port) + "/late", 1u << 20);
  ASSERT_TRUE(w) << w.error().to_string();
  (*w)->write("queued before the server\n", false);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  MiniServer server(port);
  ASSERT_TRUE(server.ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  while ((*w)->stats().messages < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  (*w)->write("after\n", false);
  (*w)->close();
  ASSERT_TRUE(server.wait_done(std::chrono::seconds(3)));
  ASSERT_EQ(server.messages.size(), 2u);
  EXPECT_EQ(server.messages[0].payload, "queued before the server\n");
  EXPECT_EQ(server.messages[1].payload, "after\n");
  EXPECT_EQ((*w)->stats().connects, 1u);
  EXPECT_EQ((*w)->stats().dropped, 0u);
}

TEST(WsClientWriterTest, ReconnectsWhenThePeerGoesAway) {
  auto first = std::make_unique<MiniServer>(0, 1);
  ASSERT_TRUE(first->ok());
  uint16_t port = first->port();
  auto w = make_ws_client_writer("ws://127.0.0.1:" + std::to_string(port) + "/", 1u << 20);
  ASSERT_TRUE(w) << w.error().to_string();
  (*w)->write("one\n", false);
  ASSERT_TRUE(first->wait_done(std::chrono::seconds(3)));
  ASSERT_EQ(first->messages.size(), 1u);
  EXPECT_EQ(first->messages[0].payload, "one\n");
  first.reset();  // the listener goes too
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  (*w)->write("lost\n", false);  // finds the link closed: counted as dropped
  MiniServer second(port);
  ASSERT_TRUE(second.ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  while ((*w)->stats().connects < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ((*w)->stats().connects, 2u);
  (*w)->write("two\n", false);
  (*w)->close();
  ASSERT_TRUE(second.wait_done(std::chrono::seconds(3)));
  ASSERT_EQ(second.messages.size(), 1u);
  EXPECT_EQ(second.messages[0].payload, "two\n");
  WriterStats s = (*w)->stats();
  EXPECT_EQ(s.messages, 2u);
  EXPECT_EQ(s.dropped, 1u);
}

}  // namespace
}  // namespace ecapture
