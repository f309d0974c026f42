// HTTP/2 framing and message assembly.
#include "events/parsers/http2.h"

#include <nghttp2/nghttp2.h>

#include <fmt/format.h>

#include "events/parsers/decompress.h"

namespace ecapture {
namespace {

constexpr uint8_t kData = 0x0, kHeaders = 0x1, kRstStream = 0x3, kPushPromise = 0x5,
                  kContinuation = 0x9;
constexpr uint8_t kFlagEndStream = 0x1, kFlagEndHeaders = 0x4, kFlagPadded = 0x8,
                  kFlagPriority = 0x20;
constexpr size_t kMaxStreams = 256;

uint32_t be32(std::string_view d) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(d[i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

// Removes padding (PADDED flag); false when the frame is malformed.
bool strip_padding(uint8_t flags, std::string_view* p) {
  if (!(flags & kFlagPadded)) return true;
  if (p->empty()) return false;
  size_t pad = static_cast<uint8_t>((*p)[0]);
  if (pad + 1 > p->size()) return false;
  *p = p->substr(1, p->size() - 1 - pad);
  return true;
}

const std::string* find(const HeaderList& h, std::string_view name) {
  for (const auto& [k, v] : h) {
    if (k == name) return &v;
  }
  return nullptr;
}

// gRPC's length-prefixed messages: 1 byte compressed flag, 4 bytes big-endian length, bytes.
std::string render_grpc(std::string_view body) {
  std::string out;
  int n = 0;
  while (body.size() >= 5) {
    uint32_t len = be32(body.substr(1));
    bool compressed = body[0] != 0;
    body.remove_prefix(5);
    std::string_view msg = body.substr(0, len);
    fmt::format_to(std::back_inserter(out), "grpc-message #{} compressed={} length={}{}\n", ++n,
                   compressed ? 1 : 0, len, msg.size() < len ? " (truncated)" : "");
    out.append(msg);
    out += '\n';
    body.remove_prefix(msg.size());
  }
  if (!body.empty()) out.append(body);  // a cut prefix
  return out;
}

}  // namespace

Http2Parser::Http2Parser(const ParserLimits& limits, bool expect_preface, MessageOut out)
    : limits_(limits), out_(std::move(out)),
      preface_left_(expect_preface ? kHttp2Preface.size() : 0) {
  if (nghttp2_hd_inflate_new(&inflater_) != 0) {
    inflater_ = nullptr;
    failed_ = true;
    return;
  }
  // The peer may grow its table up to what our side's SETTINGS allow; we never see those
  // settings reliably, so accept up to 64 KiB (the table only grows on the encoder's request).
  nghttp2_hd_inflate_change_table_size(inflater_, 65536);
}

Http2Parser::~Http2Parser() {
  if (inflater_ != nullptr) nghttp2_hd_inflate_del(inflater_);
}

size_t Http2Parser::buffered() const {
  size_t n = frame_.size() + block_.size();
  for (const auto& [id, s] : streams_) n += s.body.size();
  return n;
}

void Http2Parser::fail(std::string rest) {
  failed_ = true;
  flush();
  if (!rest.empty()) out_(raw_message(frame_meta_, std::move(rest)));
  frame_.clear();
  block_.clear();
}

void Http2Parser::feed(const DataEvent& meta, std::string_view data) {
  if (failed_) {
    if (!data.empty()) out_(raw_message(meta, std::string(data)));
    return;
  }
  if (preface_left_ > 0) {
    size_t done = kHttp2Preface.size() - preface_left_;
    size_t n = std::min(preface_left_, data.size());
    if (data.substr(0, n) != kHttp2Preface.substr(done, n)) {
      frame_meta_ = meta_of(meta);
      fail(std::string(data));
      return;
    }
    preface_left_ -= n;
    data.remove_prefix(n);
  }
  while (!data.empty()) {
    if (frame_.empty()) frame_meta_ = meta_of(meta);
    // Take the header, then exactly the payload it announces.
    size_t want = 9;
    if (frame_.size() >= 9) {
      want += (static_cast<size_t>(static_cast<uint8_t>(frame_[0])) << 16) |
              (static_cast<size_t>(static_cast<uint8_t>(frame_[1])) << 8) |
              static_cast<uint8_t>(frame_[2]);
    }
    size_t n = std::min(want - frame_.size(), data.size());
    frame_.append(data.substr(0, n));
    data.remove_prefix(n);
    if (frame_.size() == 9) {
      size_t len = (static_cast<size_t>(static_cast<uint8_t>(frame_[0])) << 16) |
                   (static_cast<size_t>(static_cast<uint8_t>(frame_[1])) << 8) |
                   static_cast<uint8_t>(frame_[2]);
      if (len > limits_.max_frame) {
        fail(std::move(frame_) + std::string(data));
        return;
      }
      if (len > 0) continue;
    }
    if (frame_.size() < 9) continue;
    size_t len = frame_.size() - 9;
    size_t announced = (static_cast<size_t>(static_cast<uint8_t>(frame_[0])) << 16) |
                       (static_cast<size_t>(static_cast<uint8_t>(frame_[1])) << 8) |
                       static_cast<uint8_t>(frame_[2]);
    if (len < announced) continue;
    uint8_t type = static_cast<uint8_t>(frame_[3]);
    uint8_t flags = static_cast<uint8_t>(frame_[4]);
    uint32_t stream_id = be32(std::string_view(frame_).substr(5)) & 0x7fffffffu;
    ++frames_;
    std::string frame = std::move(frame_);
    frame_.clear();
    if (!handle_frame(type, flags, stream_id, std::string_view(frame).substr(9))) {
      fail(std::move(frame) + std::string(data));
      return;
    }
  }
}

bool Http2Parser::decode_block(std::string_view block, HeaderList* out) {
  auto* in = reinterpret_cast<const uint8_t*>(block.data());
  size_t left = block.size();
  for (;;) {
    nghttp2_nv nv;
    int flags = 0;
    ssize_t rv = nghttp2_hd_inflate_hd2(inflater_, &nv, &flags, in, left, 1);
    if (rv < 0) return false;
    in += rv;
    left -= static_cast<size_t>(rv);
    if (flags & NGHTTP2_HD_INFLATE_EMIT) {
      if (out != nullptr) {
        out->emplace_back(std::string(reinterpret_cast<const char*>(nv.name), nv.namelen),
                          std::string(reinterpret_cast<const char*>(nv.value), nv.valuelen));
      }
    }
    if (flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(inflater_);
      return true;
    }
    if (!(flags & NGHTTP2_HD_INFLATE_EMIT) && left == 0) return false;  // cut block
  }
}

bool Http2Parser::finish_header_block() {
  std::string block = std::move(block_);
  block_.clear();
  uint32_t id = block_stream_;
  block_stream_ = 0;
  if (block_is_push_) return decode_block(block, nullptr);  // keeps the table in step
  HeaderList headers;
  if (!decode_block(block, &headers)) return false;
  auto it = streams_.find(id);
  if (it == streams_.end()) {
    if (streams_.size() >= kMaxStreams) {
      emit(streams_.begin()->first, streams_.begin()->second, true);
      streams_.erase(streams_.begin());
    }
    it = streams_.emplace(id, Stream{}).first;
    it->second.meta = block_meta_;
  }
  Stream& s = it->second;
  s.wire += block.size();
  if (!s.have_headers) {
    s.headers = std::move(headers);
    s.have_headers = true;
    // An informational response (1xx) is followed by the final headers: show them all.
  } else if (s.body.empty() && !s.headers.empty() && find(headers, ":status") != nullptr) {
    s.headers.insert(s.headers.end(), headers.begin(), headers.end());
  } else {
    s.trailers.insert(s.trailers.end(), headers.begin(), headers.end());
  }
  if (block_end_stream_) {
    emit(id, s, false);
    streams_.erase(it);
  }
  return true;
}

bool Http2Parser::handle_frame(uint8_t type, uint8_t flags, uint32_t stream_id,
                               std::string_view p) {
  if (!block_.empty() || block_stream_ != 0) {
    // Only CONTINUATION of the same stream may follow an unfinished header block.
    if (type != kContinuation || stream_id != block_stream_) return false;
    if (block_.size() + p.size() > limits_.max_head) return false;
    block_.append(p);
    if (flags & kFlagEndHeaders) return finish_header_block();
    return true;
  }
  switch (type) {
    case kData: {
      if (stream_id == 0 || !strip_padding(flags, &p)) return false;
      auto it = streams_.find(stream_id);
      if (it == streams_.end()) {
        it = streams_.emplace(stream_id, Stream{}).first;
        it->second.meta = frame_meta_;
      }
      Stream& s = it->second;
      s.body.append(p);
      s.wire += 9 + p.size();
      if (flags & kFlagEndStream) {
        emit(stream_id, s, false);
        streams_.erase(it);
      } else if (s.body.size() > limits_.max_message) {
        emit(stream_id, s, true);
        s.body.clear();
        s.continued = true;
      }
      return true;
    }
    case kHeaders:
    case kPushPromise: {
      if (stream_id == 0 || !strip_padding(flags, &p)) return false;
      if (type == kHeaders && (flags & kFlagPriority)) {
        if (p.size() < 5) return false;
        p.remove_prefix(5);
      }
      if (type == kPushPromise) {
        if (p.size() < 4) return false;
        p.remove_prefix(4);
      }
      block_stream_ = stream_id;
      block_end_stream_ = type == kHeaders && (flags & kFlagEndStream);
      block_is_push_ = type == kPushPromise;
      block_meta_ = frame_meta_;
      block_.assign(p);
      if (flags & kFlagEndHeaders) return finish_header_block();
      return true;
    }
    case kRstStream:
      if (auto it = streams_.find(stream_id); it != streams_.end()) {
        emit(stream_id, it->second, true);
        streams_.erase(it);
      }
      return true;
    case kContinuation:
      return false;  // without a HEADERS before it
    default:
      return true;  // SETTINGS, PING, WINDOW_UPDATE, PRIORITY, GOAWAY, unknown: connection-level
  }
}

void Http2Parser::emit(uint32_t id, Stream& s, bool partial) {
  Message m;
  m.event = s.meta;
  m.stream_id = id;
  m.wire_bytes = s.wire;
  HttpInfo& h = m.http;
  h.version = "HTTP/2";
  h.partial = partial || s.continued;
  h.headers = s.headers;
  bool request = find(s.headers, ":method") != nullptr;
  m.proto = request ? Protocol::kHttp2Request : Protocol::kHttp2Response;
  if (const auto* v = find(s.headers, ":method")) h.method = *v;
  if (const auto* v = find(s.headers, ":path")) h.path = *v;
  if (const auto* v = find(s.headers, ":authority")) h.authority = *v;
  if (const auto* v = find(s.headers, ":status")) h.status = std::atoi(v->c_str());
  if (!request && h.status == 0) {
    // DATA without headers (headers emitted earlier or lost): name it by direction unknown.
    m.proto = Protocol::kHttp2Response;
  }
  std::string body = std::move(s.body);
  s.body.clear();
  if (!partial && !s.continued) {
    if (const auto* ce = find(s.headers, "content-encoding"); ce != nullptr && !body.empty()) {
      if (auto d = decode_content(*ce, body, limits_.max_decoded)) {
        body = std::move(*d);
        h.content_encoding = *ce;
        h.body_decoded = true;
      }
    }
  }
  const auto* ct = find(s.headers, "content-type");
  if (ct != nullptr && ct->rfind("application/grpc", 0) == 0) {
    body = render_grpc(body);
    h.body_decoded = true;
  }
  std::string out;
  if (!s.continued) {
    for (const auto& [k, v] : s.headers) fmt::format_to(std::back_inserter(out), "{}: {}\r\n", k, v);
    out += "\r\n";
  }
  out += body;
  if (!s.trailers.empty()) {
    out += "\r\n";
    for (const auto& [k, v] : s.trailers) fmt::format_to(std::back_inserter(out), "{}: {}\r\n", k, v);
    h.headers.insert(h.headers.end(), s.trailers.begin(), s.trailers.end());
  }
  m.event.length = out.size();
  m.event.payload = std::move(out);
  out_(std::move(m));
}

void Http2Parser::flush() {
  for (auto& [id, s] : streams_) {
    bool fresh = s.continued ? !s.body.empty() : (s.have_headers || !s.body.empty());
    if (!fresh) continue;
    emit(id, s, true);
    s.body.clear();
    s.continued = true;
  }
}

}  // namespace ecapture
