// The web view's HTTP routes on the --listen server: the embedded page, the live stream of rows
// (Server-Sent Events), row details, HAR / JSON-lines export and the pcapng / key log downloads.
#pragma once

#include <functional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace httplib {
class Server;
}

namespace ecapture::web {

class WebHub;

// Headers every answer of the server carries: a strict Content-Security-Policy (scripts and
// styles only from the page itself, no inline code, nothing from elsewhere) and friends.
void add_security_headers(httplib::Server& s);
// The page's files need no token (they hold no data; the page asks for the token itself).
bool is_public_path(std::string_view path);
// `config` returns the configuration of the running module (for the download links).
void install_web_routes(httplib::Server& s, WebHub& hub, std::function<nlohmann::json()> config);

}  // namespace ecapture::web
