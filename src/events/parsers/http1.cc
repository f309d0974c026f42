// HTTP/1.x message parsing.
#include "events/parsers/http1.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "events/parsers/decompress.h"

namespace ecapture {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool contains_token(std::string_view list, std::string_view token) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    if (iequals(trim(list.substr(start, comma - start)), token)) return true;
    start = comma + 1;
  }
  return false;
}

const std::string* find_header(const HeaderList& h, std::string_view name) {
  for (const auto& [k, v] : h) {
    if (iequals(k, name)) return &v;
  }
  return nullptr;
}

}  // namespace

void Http1Parser::feed(const DataEvent& meta, std::string_view data) {
  cur_meta_ = meta_of(meta);
  release_buffer(streamed_);
  while (!data.empty() && !fell_back_) {
    size_t n = 0;
    switch (state_) {
      case State::kIdle:
        meta_ = meta_of(meta);
        state_ = State::kHead;
        [[fallthrough]];
      case State::kHead:
        n = feed_head(data);
        break;
      case State::kBody:
        n = feed_body(data);
        break;
    }
    data.remove_prefix(n);
  }
  if (!streamed_.empty()) {
    out_(raw_message(cur_meta_, std::move(streamed_)));
    streamed_.clear();
  }
  if (state_ == State::kBody && !streaming_ && buffered() > limits_.max_message) flush();
}

size_t Http1Parser::feed_head(std::string_view data) {
  // Only look for the end of the head in what is new (plus 3 bytes of overlap).
  size_t old = head_.size();
  size_t take = std::min(data.size(), limits_.max_head + 4 - std::min(old, limits_.max_head + 4));
  head_.append(data.substr(0, take));
  {
    Sniff s = sniff(head_, false);
    if (s != Sniff::kNeedMore && s != Sniff::kHttp1Request && s != Sniff::kHttp1Response) {
      // Not HTTP/1 at a message boundary: everything from here on is raw.
      fall_back(std::move(head_), data.substr(take), meta_);
      return data.size();
    }
  }
  size_t from = old >= 3 ? old - 3 : 0;
  size_t end = head_.find("\r\n\r\n", from);
  size_t end_len = 4;
  if (size_t lf = head_.find("\n\n", from); lf != std::string::npos && lf < end) {
    end = lf;
    end_len = 2;
  }
  if (end == std::string::npos) {
    if (head_.size() > limits_.max_head) {  // not a head we are willing to hold
      fall_back(std::move(head_), data.substr(take), meta_);
      return data.size();
    }
    return take;
  }
  size_t head_len = end + end_len;
  size_t used = take - (head_.size() - head_len);
  head_.resize(head_len);
  wire_ = head_len;
  if (!parse_head()) {
    std::string bytes = std::move(head_);
    bytes.append(data.substr(used));
    out_(raw_message(meta_, std::move(bytes)));
    reset();
    fell_back_ = true;
    return data.size();
  }
  if (body_kind_ == BodyKind::kNone || (body_kind_ == BodyKind::kLength && remaining_ == 0)) {
    complete();
  } else {
    state_ = State::kBody;
  }
  return used;
}

bool Http1Parser::parse_head() {
  msg_ = Message{};
  HttpInfo& h = msg_.http;
  std::string_view head(head_);
  size_t eol = head.find('\n');
  std::string_view start = trim(head.substr(0, eol));
  bool request = start.rfind("HTTP/", 0) != 0;
  if (request) {
    size_t sp1 = start.find(' ');
    size_t sp2 = start.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) return false;
    h.method = std::string(start.substr(0, sp1));
    h.path = std::string(start.substr(sp1 + 1, sp2 - sp1 - 1));
    h.version = std::string(start.substr(sp2 + 1));
    msg_.proto = Protocol::kHttp1Request;
  } else {
    size_t sp1 = start.find(' ');
    if (sp1 == std::string_view::npos) return false;
    h.version = std::string(start.substr(0, sp1));
    std::string_view code = start.substr(sp1 + 1, 3);
    if (std::from_chars(code.data(), code.data() + code.size(), h.status).ec != std::errc{}) {
      return false;
    }
    msg_.proto = Protocol::kHttp1Response;
  }
  size_t pos = eol + 1;
  while (pos < head.size()) {
    size_t nl = head.find('\n', pos);
    if (nl == std::string_view::npos) nl = head.size();
    std::string_view line = trim(head.substr(pos, nl - pos));
    pos = nl + 1;
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;  // tolerate, do not guess
    h.headers.emplace_back(std::string(trim(line.substr(0, colon))),
                           std::string(trim(line.substr(colon + 1))));
  }
  if (const auto* host = find_header(h.headers, "Host")) h.authority = *host;

  const std::string* te = find_header(h.headers, "Transfer-Encoding");
  const std::string* cl = find_header(h.headers, "Content-Length");
  body_kind_ = BodyKind::kNone;
  bool no_body = false;
  if (request) {
    shared_->request_methods.push_back(h.method);
    if (shared_->request_methods.size() > 64) shared_->request_methods.pop_front();
  } else {
    std::string method;
    // A 1xx response is followed by the real one for the same request.
    if (h.status >= 200 && !shared_->request_methods.empty()) {
      method = shared_->request_methods.front();
      shared_->request_methods.pop_front();
    }
    no_body = (h.status >= 100 && h.status < 200) || h.status == 204 || h.status == 304 ||
              method == "HEAD";
  }
  if (no_body) return true;
  if (te != nullptr && contains_token(*te, "chunked")) {
    body_kind_ = BodyKind::kChunked;
    chunk_state_ = ChunkState::kSize;
  } else if (cl != nullptr) {
    uint64_t n = 0;
    auto v = trim(*cl);
    if (std::from_chars(v.data(), v.data() + v.size(), n).ec != std::errc{}) return false;
    body_kind_ = BodyKind::kLength;
    remaining_ = n;
  } else if (!request) {
    body_kind_ = BodyKind::kUntilClose;
  }
  return true;
}

void Http1Parser::pass_through(std::string_view wire) {
  if (streaming_) streamed_.append(wire);
}

void Http1Parser::take_body(std::string_view bytes) {
  if (streaming_) {
    pass_through(bytes);
  } else {
    body_.append(bytes);
  }
}

void Http1Parser::give_up_chunked(std::string_view rest) {
  // Not a chunked body after all: the message so far goes out partial, the rest raw.
  std::string held = std::move(line_);
  emit_message(true);
  fall_back(std::move(held), rest, cur_meta_);
}

void Http1Parser::fall_back(std::string held, std::string_view rest, const DataEvent& meta) {
  held.append(rest);
  out_(raw_message(meta, std::move(held)));
  reset();
  fell_back_ = true;
}

size_t Http1Parser::feed_body(std::string_view data) {
  switch (body_kind_) {
    case BodyKind::kNone:
      complete();
      return 0;
    case BodyKind::kUntilClose:
      take_body(data);
      wire_ += data.size();
      return data.size();
    case BodyKind::kLength: {
      size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size()));
      take_body(data.substr(0, n));
      remaining_ -= n;
      wire_ += n;
      if (remaining_ == 0) complete();
      return n;
    }
    case BodyKind::kChunked:
      break;
  }
  // Chunked: size line, data, CRLF, ..., 0 line, trailers, empty line.
  size_t used = 0;
  while (used < data.size() && state_ == State::kBody) {
    std::string_view rest = data.substr(used);
    if (chunk_state_ == ChunkState::kData) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
      take_body(rest.substr(0, n));
      remaining_ -= n;
      used += n;
      wire_ += n;
      if (remaining_ == 0) chunk_state_ = ChunkState::kDataEnd;
      continue;
    }
    // Line-oriented states.
    size_t nl = rest.find('\n');
    size_t n = nl == std::string_view::npos ? rest.size() : nl + 1;
    line_.append(rest.substr(0, n));
    pass_through(rest.substr(0, n));
    used += n;
    wire_ += n;
    if (nl == std::string_view::npos) {
      if (line_.size() > 4096) {  // no chunk line is that long: give up on this stream
        give_up_chunked(data.substr(used));
        return data.size();
      }
      continue;
    }
    std::string_view line = trim(std::string_view(line_).substr(0, line_.size() - 1));
    switch (chunk_state_) {
      case ChunkState::kSize: {
        std::string_view hex = line.substr(0, line.find(';'));
        hex = trim(hex);
        uint64_t size = 0;
        auto r = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
        if (r.ec != std::errc{} || r.ptr != hex.data() + hex.size()) {
          give_up_chunked(data.substr(used));
          return data.size();
        }
        remaining_ = size;
        chunk_state_ = size == 0 ? ChunkState::kTrailer : ChunkState::kData;
        break;
      }
      case ChunkState::kDataEnd:
        chunk_state_ = ChunkState::kSize;  // the CRLF after the data (tolerate junk)
        break;
      case ChunkState::kTrailer:
        if (line.empty()) complete();
        break;
      case ChunkState::kData:
        break;
    }
    line_.clear();
  }
  return used;
}

void Http1Parser::emit_message(bool partial) {
  Message m = std::move(msg_);
  m.event = meta_;
  m.http.partial = partial;
  m.wire_bytes = wire_;
  std::string payload = std::move(head_);
  const std::string* ce = find_header(m.http.headers, "Content-Encoding");
  m.http.body_decoded = body_kind_ == BodyKind::kChunked;
  if (ce != nullptr && !partial && !body_.empty()) {
    if (auto decoded = decode_content(*ce, body_, limits_.max_decoded)) {
      m.http.content_encoding = *ce;
      m.http.body_decoded = true;
      body_ = std::move(*decoded);
    }
  }
  payload.append(body_);
  m.event.length = payload.size();
  m.event.payload = std::move(payload);
  out_(std::move(m));
  head_.clear();
  release_buffer(body_);
}

void Http1Parser::complete() {
  if (streaming_) {
    // The head and the first body bytes went out already; the tail was passed through.
    if (!streamed_.empty()) {
      out_(raw_message(cur_meta_, std::move(streamed_)));
      streamed_.clear();
    }
    msg_ = Message{};
    head_.clear();
    release_buffer(body_);
  } else {
    emit_message(false);
  }
  reset();
}

void Http1Parser::flush() {
  if (state_ == State::kIdle && head_.empty()) return;
  if (state_ != State::kBody) {
    // An undecided or unfinished head: raw.
    if (!head_.empty()) out_(raw_message(meta_, std::move(head_)));
    reset();
    return;
  }
  if (streaming_) return;
  if (body_kind_ == BodyKind::kUntilClose) {
    // Its end is the connection's close, which we cannot see: what came is the message.
    emit_message(false);
    reset();
    return;
  }
  emit_message(true);
  streaming_ = true;
}

void Http1Parser::reset() {
  state_ = State::kIdle;
  streaming_ = false;
  head_.clear();
  release_buffer(body_);
  line_.clear();
  wire_ = 0;
  remaining_ = 0;
  body_kind_ = BodyKind::kNone;
  chunk_state_ = ChunkState::kSize;
}

}  // namespace ecapture
