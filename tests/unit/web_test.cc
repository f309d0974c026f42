// The web view's pieces without a server: exchange pairing on recorded HTTP/1 bytes run through
// the real EventProcessor, HTTP/2 stream pairing, HAR 1.2 entries and the --har file, the row
// history bounds, live-client queues, and the API's request guard.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "api/request_guard.h"
#include "compress_util.h"
#include "events/event_processor.h"
#include "output/encoders.h"
#include "web/har.h"
#include "web/har_file.h"
#include "web/web_hub.h"

namespace ecapture {
namespace {

using web::ExchangePairer;
using web::Row;

struct Capture : MessageSink {
  std::vector<Message> messages;
  void write(const Message& m) override { messages.push_back(m); }
  void write_audit(const AuditEvent&) override {}
};

Endpoint ep(uint8_t last, uint16_t port) {
  Endpoint e;
  e.family = 2;  // AF_INET
  e.addr = {127, 0, 0, last};
  e.port = port;
  return e;
}

// One library call of the client (pid 100, fd 5, 127.0.0.1:40000 ↔ 127.0.0.2:8443).
DataEvent client_call(Direction dir, std::string bytes, uint64_t t_ns) {
  DataEvent e;
  e.timestamp_ns = t_ns;
  e.pid = 100;
  e.tid = 100;
  e.comm = "curl";
  e.fd = 5;
  e.direction = dir;
  e.src = dir == Direction::kWrite ? ep(1, 40000) : ep(2, 8443);
  e.dst = dir == Direction::kWrite ? ep(2, 8443) : ep(1, 40000);
  e.length = bytes.size();
  e.payload = std::move(bytes);
  e.source = "openssl";
  e.conn_id = 0xabc;
  return e;
}

using test_util::gzip;

// Two pipelined requests on one keep-alive connection, the second answered with a gzip body in
// two calls: recorded bytes through the real processor.
std::vector<Message> recorded_exchanges(std::string& gz_out) {
  const std::string json = R"({"hello":"world","n":[1,2,3]})";
  gz_out = gzip(json);
  const std::string req1 = "GET /a?x=1&y=two HTTP/1.1\r\nHost: example.test:8443\r\n\r\n";
  const std::string req2 = "POST /b HTTP/1.1\r\nHost: example.test:8443\r\nContent-Type: "
                           "application/json\r\nContent-Length: 7\r\n\r\n{\"k\":1}";
  const std::string resp1 = "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope\n";
  const std::string resp2_head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Content-Encoding: gzip\r\nContent-Length: " +
                                 std::to_string(gz_out.size()) + "\r\n\r\n";
  Capture cap;
  ProcessorOptions opt;
  {
    EventProcessor p(opt, &cap);
    p.emit(client_call(Direction::kWrite, req1 + req2, 1'000'000'000));
    p.emit(client_call(Direction::kRead, resp1 + resp2_head + gz_out.substr(0, 10),
                       1'003'000'000));
    p.emit(client_call(Direction::kRead, gz_out.substr(10), 1'004'000'000));
    p.flush();
    p.close();
  }
  return cap.messages;
}

TEST(ExchangePairerTest, RecordedHttp1PipelinePairsInOrder) {
  std::string gz;
  std::vector<Message> ms = recorded_exchanges(gz);
  ASSERT_EQ(ms.size(), 4u);
  ExchangePairer pairer;
  uint64_t id = 1;
  std::vector<std::shared_ptr<Row>> rows;
  for (const Message& m : ms) {
    auto r = pairer.add(m, id);
    if (r.created) {
      ++id;
      rows.push_back(r.row);
    }
  }
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_TRUE(rows[0]->request && rows[0]->response);
  EXPECT_EQ(rows[0]->request->http.path, "/a?x=1&y=two");
  EXPECT_EQ(rows[0]->response->http.status, 404);
  EXPECT_EQ(rows[1]->request->http.method, "POST");
  EXPECT_EQ(rows[1]->response->http.status, 200);
  EXPECT_EQ(web::split_http(*rows[1]->response).body, R"({"hello":"world","n":[1,2,3]})");
  EXPECT_EQ(pairer.pending(), 0u);
}

TEST(HarTest, EntriesOfRecordedExchanges) {
  std::string gz;
  std::vector<Message> ms = recorded_exchanges(gz);
  ExchangePairer pairer;
  std::vector<std::shared_ptr<Row>> rows;
  uint64_t id = 1;
  for (const Message& m : ms) {
    auto r = pairer.add(m, id);
    if (r.created) rows.push_back(r.row), ++id;
  }
  nlohmann::json doc = web::har_document(rows);
  // Round trip through text, as a HAR reader would.
  doc = nlohmann::json::parse(doc.dump());
  const auto& log = doc["log"];
  EXPECT_EQ(log["version"], "1.2");
  EXPECT_EQ(log["creator"]["name"], "ecapture");
  ASSERT_EQ(log["entries"].size(), 2u);
  const auto& e0 = log["entries"][0];
  EXPECT_EQ(e0["startedDateTime"], "1970-01-01T00:00:01.000Z");
  EXPECT_EQ(e0["request"]["method"], "GET");
  EXPECT_EQ(e0["request"]["url"], "https://example.test:8443/a?x=1&y=two");
  EXPECT_EQ(e0["request"]["httpVersion"], "HTTP/1.1");
  EXPECT_EQ(e0["request"]["queryString"],
            nlohmann::json::parse(R"([{"name":"x","value":"1"},{"name":"y","value":"two"}])"));
  EXPECT_EQ(e0["request"]["headersSize"], 54);
  EXPECT_EQ(e0["request"]["bodySize"], 0);
  EXPECT_EQ(e0["response"]["status"], 404);
  EXPECT_EQ(e0["response"]["statusText"], "Not Found");
  EXPECT_EQ(e0["response"]["content"]["size"], 5);
  EXPECT_EQ(e0["response"]["content"]["text"], "nope\n");
  EXPECT_EQ(e0["response"]["bodySize"], 5);
  EXPECT_DOUBLE_EQ(e0["time"].get<double>(), 3.0);
  EXPECT_EQ(e0["serverIPAddress"], "127.0.0.2");
  EXPECT_EQ(e0["_pid"], 100);
  EXPECT_EQ(e0["_comm"], "curl");
  const auto& e1 = log["entries"][1];
  EXPECT_EQ(e1["request"]["postData"]["text"], "{\"k\":1}");
  EXPECT_EQ(e1["request"]["postData"]["mimeType"], "application/json");
  EXPECT_EQ(e1["request"]["bodySize"], 7);
  EXPECT_EQ(e1["response"]["content"]["text"], R"({"hello":"world","n":[1,2,3]})");
  EXPECT_EQ(e1["response"]["content"]["size"], 29);
  EXPECT_EQ(e1["response"]["bodySize"], static_cast<long long>(gz.size()));
  EXPECT_EQ(e1["response"]["content"]["mimeType"], "application/json");
  for (const auto& h : e1["response"]["headers"]) {
    EXPECT_TRUE(h.contains("name") && h.contains("value"));
  }
}

Message h2(bool request, uint32_t stream, int status, std::string path) {
  Message m;
  m.event = client_call(request ? Direction::kWrite : Direction::kRead, "", 5);
  m.proto = request ? Protocol::kHttp2Request : Protocol::kHttp2Response;
  m.stream_id = stream;
  m.http.version = "HTTP/2";
  if (request) {
    m.http.method = "GET";
    m.http.path = path;
    m.http.authority = "h2.test";
    m.http.headers = {{":method", "GET"}, {":path", path}, {":scheme", "https"},
                      {":authority", "h2.test"}};
  } else {
    m.http.status = status;
    m.http.headers = {{":status", std::to_string(status)}};
  }
  m.event.payload = "x: y\r\n\r\n";
  return m;
}

TEST(ExchangePairerTest, Http2StreamsPairById) {
  ExchangePairer pairer;
  auto a = pairer.add(h2(true, 1, 0, "/one"), 1);
  auto b = pairer.add(h2(true, 3, 0, "/three"), 2);
  auto rb = pairer.add(h2(false, 3, 204, ""), 3);
  auto ra = pairer.add(h2(false, 1, 500, ""), 3);
  EXPECT_TRUE(rb.completed && !rb.created);
  EXPECT_EQ(rb.row->id, 2u);
  EXPECT_EQ(rb.row->response->http.status, 204);
  EXPECT_EQ(ra.row->id, 1u);
  EXPECT_EQ(ra.row->response->http.status, 500);
  EXPECT_EQ(web::request_url(*a.row->request), "https://h2.test/one");
  // A response nobody asked for (capture started late) is a row of its own.
  auto orphan = pairer.add(h2(false, 9, 200, ""), 3);
  EXPECT_TRUE(orphan.created);
  EXPECT_FALSE(orphan.row->request);
  EXPECT_TRUE(web::har_entry(*orphan.row).is_null());
  (void)b;
}

TEST(ExchangePairerTest, InterimResponsesWaitForTheFinalOne) {
  ExchangePairer pairer;
  Message req;
  req.event = client_call(Direction::kWrite, "POST / HTTP/1.1\r\n\r\n", 1);
  req.proto = Protocol::kHttp1Request;
  req.http.method = "POST";
  Message cont = req;
  cont.event = client_call(Direction::kRead, "HTTP/1.1 100 Continue\r\n\r\n", 2);
  cont.proto = Protocol::kHttp1Response;
  cont.http.status = 100;
  Message fin = cont;
  fin.http.status = 201;
  pairer.add(req, 1);
  EXPECT_FALSE(pairer.add(cont, 2).completed);
  auto r = pairer.add(fin, 2);
  EXPECT_TRUE(r.completed);
  EXPECT_EQ(r.row->response->http.status, 201);
}

TEST(RowHistoryTest, BoundedByRowsAndBytes) {
  web::RowHistory h(3, 10000);
  for (uint64_t i = 1; i <= 5; ++i) {
    auto row = std::make_shared<Row>();
    row->id = i * 2;
    row->bytes = 100;
    h.push(row);
  }
  ASSERT_EQ(h.rows().size(), 3u);
  EXPECT_EQ(h.rows().front()->id, 6u);
  EXPECT_TRUE(h.find(8));
  EXPECT_FALSE(h.find(7));
  EXPECT_FALSE(h.find(4));
  web::RowHistory small(100, 250);
  for (uint64_t i = 1; i <= 5; ++i) {
    auto row = std::make_shared<Row>();
    row->id = i;
    row->bytes = 100;
    small.push(row);
  }
  EXPECT_EQ(small.rows().size(), 2u);
  EXPECT_EQ(small.bytes(), 200u);
}

std::string temp_dir() {
  char tmpl[] = "/tmp/ecapture-web-test-XXXXXX";
  return std::string(::mkdtemp(tmpl));
}

TEST(HarFileTest, WrittenOnCommitOnlyAndNeverOverwrites) {
  std::string dir = temp_dir();
  std::string path = dir + "/out.har";
  EXPECT_EQ(web::HarFile::create("").error().to_string(), "--har needs a file name");
  {
    auto h = web::HarFile::create(path);
    ASSERT_TRUE(h);
    EXPECT_NE(::access(path.c_str(), F_OK), 0);  // not there until commit
    std::string gz;
    ExchangePairer pairer;
    for (const Message& m : recorded_exchanges(gz)) {
      auto r = pairer.add(m, 1);
      if (r.completed) (*h)->add(*r.row);
    }
    ASSERT_TRUE((*h)->commit());
  }
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json doc = nlohmann::json::parse(ss.str());
  EXPECT_EQ(doc["log"]["version"], "1.2");
  ASSERT_EQ(doc["log"]["entries"].size(), 2u);
  EXPECT_EQ(doc["log"]["entries"][1]["response"]["status"], 200);
  auto again = web::HarFile::create(path);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().to_string().find("the file exists"), std::string::npos);
  // Discarded (the run never started): no file, no temporary left.
  std::string other = dir + "/never.har";
  { auto h = web::HarFile::create(other); ASSERT_TRUE(h); }
  EXPECT_NE(::access(other.c_str(), F_OK), 0);
  ::unlink(path.c_str());
  EXPECT_EQ(::rmdir(dir.c_str()), 0) << "a temporary file was left in " << dir;
}

TEST(WebHubTest, RowsLiveClientsAndPendingRequestsInHar) {
  std::string dir = temp_dir();
  std::string path = dir + "/hub.har";
  auto har = web::HarFile::create(path);
  ASSERT_TRUE(har);
  web::WebOptions opt;
  opt.history_rows = 10;
  opt.client_queue_bytes = 20000;
  web::WebHub hub(opt, std::move(*har));
  std::vector<std::string> snapshot;
  auto client = hub.subscribe(snapshot);
  ASSERT_TRUE(client);
  EXPECT_TRUE(snapshot.empty());
  std::string gz;
  for (const Message& m : recorded_exchanges(gz)) hub.write(m);
  // A request that is never answered still goes to the HAR at the end.
  Message lone;
  lone.event = client_call(Direction::kWrite, "GET /lone HTTP/1.1\r\nHost: l\r\n\r\n", 9);
  lone.event.fd = 6;
  lone.proto = Protocol::kHttp1Request;
  lone.http.method = "GET";
  lone.http.path = "/lone";
  lone.http.authority = "l";
  hub.write(lone);
  AuditEvent cmd;
  cmd.kind = "BASH";
  cmd.pid = 7;
  cmd.comm = "bash";
  cmd.text = "ls -l";
  cmd.status = 2;
  cmd.source = "bash";
  hub.write_audit(cmd);
  // Rows: 2 exchanges (each sent when created and when completed), 1 lone request, 1 command.
  std::vector<std::string> got = client->take(std::chrono::milliseconds(10));
  ASSERT_EQ(got.size(), 6u);
  auto last = nlohmann::json::parse(got.back());
  EXPECT_EQ(last["kind"], "shell");
  EXPECT_EQ(last["status"], 2);
  EXPECT_EQ(last["container"], nullptr);
  auto completed = nlohmann::json::parse(got[3]);
  EXPECT_EQ(completed["id"], 2);
  EXPECT_EQ(completed["status"], 200);
  EXPECT_EQ(completed["method"], "POST");
  EXPECT_EQ(completed["resp_size"], 29);
  EXPECT_EQ(completed["duration_ns"], 3'000'000);
  nlohmann::json d = hub.row_detail(2);
  EXPECT_EQ(d["response"]["content_encoding"], "gzip");
  EXPECT_EQ(d["response"]["body_b64"], base64_encode(R"({"hello":"world","n":[1,2,3]})"));
  EXPECT_EQ(d["process"]["comm"], "curl");
  EXPECT_EQ(hub.export_har({1, 2, 3, 4, 99})["log"]["entries"].size(), 3u);
  std::string jsonl = hub.export_jsonl({1, 4});
  EXPECT_EQ(std::count(jsonl.begin(), jsonl.end(), '\n'), 3);
  // A client that does not read loses rows beyond its queue bound, counted.
  for (int i = 0; i < 300; ++i) hub.write_audit(cmd);
  EXPECT_GT(client->dropped(), 0u);
  EXPECT_EQ(client->take(std::chrono::milliseconds(1)).size() + client->dropped(), 300u);
  ASSERT_TRUE(hub.close(true));
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json doc = nlohmann::json::parse(ss.str());
  ASSERT_EQ(doc["log"]["entries"].size(), 3u);
  EXPECT_EQ(doc["log"]["entries"][2]["request"]["url"], "https://l/lone");
  EXPECT_EQ(doc["log"]["entries"][2]["response"]["status"], 0);
  ::unlink(path.c_str());
  EXPECT_EQ(::rmdir(dir.c_str()), 0);
}

TEST(RequestGuardTest, HostOriginAndContentType) {
  api::ListenAddress listen{"127.0.0.1", 28256, true};
  auto check = [&](std::string_view method, const char* host, const char* origin,
                   std::string_view ct = "application/json") {
    api::GuardedRequest r;
    r.method = method;
    r.has_host = host != nullptr;
    r.host = host != nullptr ? host : "";
    r.has_origin = origin != nullptr;
    r.origin = origin != nullptr ? origin : "";
    r.content_type = ct;
    auto refused = api::check_request(r, listen, 28256);
    return refused ? refused->http_status : 0;
  };
  EXPECT_EQ(check("GET", "127.0.0.1:28256", nullptr), 0);
  EXPECT_EQ(check("GET", "localhost:28256", nullptr), 0);
  EXPECT_EQ(check("GET", "[::1]:28256", nullptr), 0);
  EXPECT_EQ(check("GET", nullptr, nullptr), 0);  // HTTP/1.0 tools
  EXPECT_EQ(check("GET", "attacker.example:28256", nullptr), 403);  // DNS rebinding
  EXPECT_EQ(check("GET", "127.0.0.1:9", nullptr), 403);
  EXPECT_EQ(check("GET", "127.0.0.1", nullptr), 403);  // port 80
  EXPECT_EQ(check("GET", "127.0.0.1:28256", "http://127.0.0.1:28256"), 0);
  EXPECT_EQ(check("POST", "127.0.0.1:28256", "http://evil.example"), 403);
  EXPECT_EQ(check("POST", "127.0.0.1:28256", "null"), 403);
  EXPECT_EQ(check("GET", "127.0.0.1:28256", "https://127.0.0.1:28256"), 403);
  EXPECT_EQ(check("POST", "127.0.0.1:28256", nullptr, "application/json; charset=utf-8"), 0);
  EXPECT_EQ(check("POST", "127.0.0.1:28256", nullptr, "text/plain"), 415);
  EXPECT_EQ(check("POST", "127.0.0.1:28256", nullptr, "application/x-www-form-urlencoded"), 415);
  EXPECT_EQ(check("POST", "127.0.0.1:28256", nullptr, ""), 415);
  api::ListenAddress named{"myhost.lan", 28256, false};
  api::GuardedRequest r;
  r.method = "GET";
  r.has_host = true;
  r.host = "MyHost.lan:28256";
  EXPECT_FALSE(api::check_request(r, named, 28256));
}

}  // namespace
}  // namespace ecapture
