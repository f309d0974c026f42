// HTTP/2 parser for one direction of a connection: frames, HEADERS+CONTINUATION through
// nghttp2's HPACK inflater (dynamic table kept for the connection's life), DATA per stream,
// one message per stream and direction at END_STREAM; gRPC messages shown as such.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "events/parsers/parser.h"

struct nghttp2_hd_inflater;

namespace ecapture {

class Http2Parser {
 public:
  // `expect_preface`: this direction is the client's and starts with the connection preface.
  Http2Parser(const ParserLimits& limits, bool expect_preface, MessageOut out);
  ~Http2Parser();
  Http2Parser(const Http2Parser&) = delete;
  Http2Parser& operator=(const Http2Parser&) = delete;

  void feed(const DataEvent& meta, std::string_view data);
  // Emits every open stream as a partial message (HPACK state is kept).
  void flush();
  // After a framing or HPACK error everything that follows is raw.
  bool failed() const { return failed_; }
  size_t buffered() const;
  uint64_t frames() const { return frames_; }

 private:
  struct Stream {
    DataEvent meta;
    HeaderList headers;
    HeaderList trailers;
    std::string body;
    uint64_t wire = 0;
    bool have_headers = false;
    bool continued = false;  // an earlier part was emitted already
  };

  bool handle_frame(uint8_t type, uint8_t flags, uint32_t stream_id, std::string_view payload);
  bool decode_block(std::string_view block, HeaderList* out);
  bool finish_header_block();
  void emit(uint32_t id, Stream& s, bool partial);
  void fail(std::string rest);

  ParserLimits limits_;
  MessageOut out_;
  nghttp2_hd_inflater* inflater_ = nullptr;
  size_t preface_left_;
  bool failed_ = false;
  DataEvent frame_meta_;  // the call in which the frame being assembled started
  std::string frame_;     // partial frame
  // HEADERS/PUSH_PROMISE waiting for CONTINUATION.
  uint32_t block_stream_ = 0;
  bool block_end_stream_ = false;
  bool block_is_push_ = false;
  std::string block_;
  DataEvent block_meta_;
  std::map<uint32_t, Stream> streams_;
  uint64_t frames_ = 0;
};

}  // namespace ecapture
