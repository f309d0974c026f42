// cpp-httplib glue of the web view.
#include "web/web_routes.h"

#include <fcntl.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <thread>

#include "web/web_assets.h"
#include "web/web_hub.h"

namespace ecapture::web {
namespace {

constexpr auto kReplace = nlohmann::json::error_handler_t::replace;
constexpr char kCsp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

std::string_view mime_of(std::string_view path) {
  if (path.ends_with(".html")) return "text/html; charset=utf-8";
  if (path.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (path.ends_with(".css")) return "text/css; charset=utf-8";
  if (path.ends_with(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

const Asset* find_asset(std::string_view path) {
  if (path == "/") path = "/index.html";
  for (const Asset& a : assets()) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

void json_reply(httplib::Response& res, int status, const nlohmann::json& j) {
  res.status = status;
  res.set_content(j.dump(-1, ' ', false, kReplace) + "\n", "application/json");
}

void error_reply(httplib::Response& res, int status, std::string msg) {
  json_reply(res, status, {{"code", status == 404 ? 3 : 4}, {"msg", std::move(msg)}});
}

// {"ids":[1,2,3]} → ids; false when the body is not that.
bool parse_ids(const std::string& body, std::vector<uint64_t>& ids) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("ids") || !j["ids"].is_array()) return false;
  for (const auto& v : j["ids"]) {
    if (!v.is_number_unsigned()) return false;
    ids.push_back(v.get<uint64_t>());
  }
  return true;
}

// The letters of a JSON key, lower case: eCapture's modules spell the same field
// "capturemode", "capture_mode", "pcapfile", "pcap_file".
std::string squash(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

std::string config_field(const nlohmann::json& config, std::string_view name) {
  if (!config.is_object()) return "";
  for (const auto& [k, v] : config.items()) {
    if (squash(k) == name && v.is_string()) return v.get<std::string>();
  }
  return "";
}

// The file the running module writes for `kind` ("pcap" or "keylog"), "" in other modes.
std::string capture_file(const nlohmann::json& config, std::string_view kind) {
  std::string mode = squash(config_field(config, "capturemode"));
  if (mode.empty()) mode = squash(config_field(config, "model"));
  if (kind == "pcap" && (mode == "pcap" || mode == "pcapng")) {
    return config_field(config, "pcapfile");
  }
  if (kind == "keylog" && (mode == "keylog" || mode == "key")) {
    return config_field(config, "keylogfile");
  }
  return "";
}

// Sends the file as it is now (the writer keeps appending: only the bytes present at open).
void send_file(httplib::Response& res, const std::string& path, std::string_view name,
               std::string_view mime) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) ::close(fd);
    error_reply(res, 404, fmt::format("{} has not been written yet", path));
    return;
  }
  auto shared_fd = std::make_shared<int>(fd);
  res.set_header("Content-Disposition", fmt::format("attachment; filename=\"{}\"", name));
  res.set_content_provider(
      static_cast<size_t>(st.st_size), std::string(mime),
      [shared_fd](size_t offset, size_t length, httplib::DataSink& sink) {
        char buf[64 * 1024];
        size_t n = std::min(length, sizeof(buf));
        ssize_t got = ::pread(*shared_fd, buf, n, static_cast<off_t>(offset));
        if (got <= 0) return false;
        return sink.write(buf, static_cast<size_t>(got));
      },
      [shared_fd](bool) { ::close(*shared_fd); });
}

std::string sse(std::string_view event, std::string_view data) {
  return fmt::format("event: {}\ndata: {}\n\n", event, data);
}

// Joins row summaries into one "rows" event (a JSON array) per batch.
std::string rows_event(std::vector<std::string>::const_iterator begin,
                       std::vector<std::string>::const_iterator end) {
  std::string data = "[";
  for (auto it = begin; it != end; ++it) {
    if (it != begin) data += ',';
    data += *it;
  }
  data += ']';
  return sse("rows", data);
}

}  // namespace

bool is_public_path(std::string_view path) {
  return path == "/" || find_asset(path) != nullptr;
}

void add_security_headers(httplib::Server& s) {
  s.set_default_headers({{"Content-Security-Policy", kCsp},
                         {"X-Content-Type-Options", "nosniff"},
                         {"X-Frame-Options", "DENY"},
                         {"Referrer-Policy", "no-referrer"},
                         {"Cross-Origin-Resource-Policy", "same-origin"},
                         {"Cache-Control", "no-store"}});
}

void install_web_routes(httplib::Server& s, WebHub& hub, std::function<nlohmann::json()> config) {
  for (const Asset& a : assets()) {
    // httplib patterns are regular expressions: escape the dots.
    std::string pattern;
    for (char c : a.path) pattern += c == '.' ? std::string("\\.") : std::string(1, c);
    if (a.path == "/index.html") pattern = "/|/index\\.html";
    const Asset* asset = &a;
    s.Get(pattern, [asset](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(asset->data), std::string(mime_of(asset->path)));
    });
  }
  s.Get("/api/info", [&hub, config](const httplib::Request&, httplib::Response& res) {
    nlohmann::json cfg = config();
    json_reply(res, 200,
               {{"history", hub.history_rows()},
                {"pcap", !capture_file(cfg, "pcap").empty()},
                {"keylog", !capture_file(cfg, "keylog").empty()},
                {"stats", hub.stats()}});
  });
  s.Get("/api/stream", [&hub](const httplib::Request&, httplib::Response& res) {
    auto snapshot = std::make_shared<std::vector<std::string>>();
    std::shared_ptr<StreamClient> client = hub.subscribe(*snapshot);
    if (!client) {
      error_reply(res, 503, "too many live pages are open; close one");
      return;
    }
    auto sent_snapshot = std::make_shared<bool>(false);
    auto last_stats = std::make_shared<std::chrono::steady_clock::time_point>();
    WebHub* h = &hub;
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [h, client, snapshot, sent_snapshot, last_stats](size_t, httplib::DataSink& sink) {
          if (!*sent_snapshot) {
            *sent_snapshot = true;
            std::string hello = sse("hello", nlohmann::json{{"history", h->history_rows()}}.dump());
            if (!sink.write(hello.data(), hello.size())) return false;
            constexpr size_t kBatch = 500;
            for (size_t i = 0; i < snapshot->size(); i += kBatch) {
              auto end = snapshot->begin() +
                         static_cast<long>(std::min(snapshot->size(), i + kBatch));
              std::string ev = rows_event(snapshot->begin() + static_cast<long>(i), end);
              if (!sink.write(ev.data(), ev.size())) return false;
            }
            snapshot->clear();
            snapshot->shrink_to_fit();
            std::string ready = sse("ready", "{}");
            return sink.write(ready.data(), ready.size());
          }
          std::vector<std::string> rows = client->take(std::chrono::milliseconds(250));
          if (client->closed()) {
            sink.done();
            return true;
          }
          if (!rows.empty()) {
            std::string ev = rows_event(rows.begin(), rows.end());
            if (!sink.write(ev.data(), ev.size())) return false;
            // Rows arriving meanwhile go out together: fewer, larger events for the page.
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
          auto now = std::chrono::steady_clock::now();
          if (now - *last_stats >= std::chrono::seconds(1)) {
            *last_stats = now;
            nlohmann::json st = h->stats();
            st["dropped"] = client->dropped();
            std::string ev = sse("stats", st.dump());
            if (!sink.write(ev.data(), ev.size())) return false;
          }
          return true;
        },
        [h, client](bool) { h->unsubscribe(client); });
  });
  s.Get(R"(/api/rows/(\d+))", [&hub](const httplib::Request& req, httplib::Response& res) {
    uint64_t id = std::strtoull(req.matches[1].str().c_str(), nullptr, 10);
    nlohmann::json d = hub.row_detail(id);
    if (d.is_null()) {
      error_reply(res, 404, fmt::format("row {} is no longer in the history", id));
    } else {
      json_reply(res, 200, d);
    }
  });
  s.Post("/api/export/har", [&hub](const httplib::Request& req, httplib::Response& res) {
    std::vector<uint64_t> ids;
    if (!parse_ids(req.body, ids)) return error_reply(res, 400, "body: {\"ids\": [row ids]}");
    res.set_header("Content-Disposition", "attachment; filename=\"ecapture.har\"");
    json_reply(res, 200, hub.export_har(ids));
  });
  s.Post("/api/export/jsonl", [&hub](const httplib::Request& req, httplib::Response& res) {
    std::vector<uint64_t> ids;
    if (!parse_ids(req.body, ids)) return error_reply(res, 400, "body: {\"ids\": [row ids]}");
    res.set_header("Content-Disposition", "attachment; filename=\"ecapture.jsonl\"");
    res.set_content(hub.export_jsonl(ids), "application/x-ndjson");
  });
  s.Get("/api/download/(pcap|keylog)", [config](const httplib::Request& req,
                                                httplib::Response& res) {
    std::string kind = req.matches[1].str();
    std::string path = capture_file(config(), kind);
    if (path.empty()) {
      return error_reply(res, 404, fmt::format("the running capture writes no {} (use -m {})",
                                               kind == "pcap" ? "pcapng" : "key log", kind));
    }
    std::string name = path.substr(path.rfind('/') + 1);
    send_file(res, path, name, kind == "pcap" ? "application/x-pcapng" : "text/plain");
  });
}

}  // namespace ecapture::web
