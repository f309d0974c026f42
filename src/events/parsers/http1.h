// Incremental HTTP/1.x parser for one direction of a connection: requests or responses,
// pipelining, Content-Length, chunked, bodies decoded for gzip/deflate/br/zstd.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "events/parsers/parser.h"

namespace ecapture {

class Http1Parser {
 public:
  Http1Parser(const ParserLimits& limits, ConnShared* shared, MessageOut out)
      : limits_(limits), shared_(shared), out_(std::move(out)) {}

  // Consumes all of `data` (bytes of the call `meta`). When the bytes at a message boundary are
  // not HTTP/1, they are emitted raw and fell_back() turns true.
  void feed(const DataEvent& meta, std::string_view data);
  // Idle timeout or size limit: emits the message so far (partial); the rest of its body, when
  // it comes, is passed through raw. Bytes of an undecided start line are emitted raw.
  void flush();
  bool idle() const { return state_ == State::kIdle && head_.empty(); }
  bool fell_back() const { return fell_back_; }
  void clear_fell_back() { fell_back_ = false; }
  size_t buffered() const { return head_.size() + body_.size(); }

 private:
  enum class State { kIdle, kHead, kBody };
  enum class BodyKind { kNone, kLength, kChunked, kUntilClose };
  enum class ChunkState { kSize, kData, kDataEnd, kTrailer };

  size_t feed_head(std::string_view data);
  size_t feed_body(std::string_view data);
  bool parse_head();  // false: not HTTP/1 after all
  void complete();
  void emit_message(bool partial);
  void reset();
  void pass_through(std::string_view wire);
  // Body bytes: kept for the message, or passed through once the message is streaming.
  void take_body(std::string_view bytes);
  // A chunk line that cannot be one: emits what is held plus `rest` raw; the stream stays raw.
  void give_up_chunked(std::string_view rest);
  // `held` and `rest` go out as one raw message; from here on the stream is raw.
  void fall_back(std::string held, std::string_view rest, const DataEvent& meta);

  ParserLimits limits_;
  ConnShared* shared_;
  MessageOut out_;

  State state_ = State::kIdle;
  bool fell_back_ = false;
  bool streaming_ = false;  // the message was emitted partially; body bytes go out raw
  DataEvent meta_;          // the call where the current message started
  DataEvent cur_meta_;      // the call being fed (for pass-through)
  std::string head_;        // start line + headers + CRLFCRLF
  std::string body_;        // body, de-chunked
  uint64_t wire_ = 0;       // wire bytes of the current message
  Message msg_;             // parsed head
  BodyKind body_kind_ = BodyKind::kNone;
  uint64_t remaining_ = 0;  // kLength: body bytes left; kChunked: bytes left in the chunk
  ChunkState chunk_state_ = ChunkState::kSize;
  std::string line_;      // partial chunk-size or trailer line
  std::string streamed_;  // pass-through bytes of the current feed
};

}  // namespace ecapture
