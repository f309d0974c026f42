// Protocol selection per connection direction.
#include "events/stream_decoder.h"

namespace ecapture {

void StreamDecoder::feed(const DataEvent& e, bool gap) {
  const bool lost = e.payload.size() < e.length;
  if (gap || lost) {
    flush();
    h1_.reset();  // its position in the byte stream is lost
    h2_.reset();  // and so is HPACK state
    mode_ = Mode::kDetect;
    if (lost) {
      Message m = raw_message(e, e.payload, e.length - e.payload.size());
      out_(std::move(m));
      return;
    }
  }
  dispatch(e, e.payload);
}

void StreamDecoder::dispatch(const DataEvent& meta, std::string_view data) {
  if (data.empty()) return;
  if (mode_ == Mode::kHttp1) {
    h1_->feed(meta, data);
    if (h1_->fell_back()) {
      h1_->clear_fell_back();
      mode_ = Mode::kDetect;
    }
    return;
  }
  if (mode_ == Mode::kHttp2) {
    h2_->feed(meta, data);
    if (h2_->failed()) {
      h2_.reset();
      mode_ = Mode::kDetect;
    }
    return;
  }
  // Detect: decide on the undecided bytes plus these.
  if (detect_.empty()) detect_meta_ = meta_of(meta);
  detect_.append(data);
  Sniff s = sniff(detect_, shared_->http2);
  if (s == Sniff::kNeedMore && detect_.size() < 16384) return;
  std::string bytes = std::move(detect_);
  detect_.clear();
  switch (s) {
    case Sniff::kHttp1Request:
    case Sniff::kHttp1Response:
      if (!h1_) h1_ = std::make_unique<Http1Parser>(limits_, shared_, out_);
      mode_ = Mode::kHttp1;
      dispatch(detect_meta_, bytes);
      return;
    case Sniff::kHttp2Preface:
    case Sniff::kHttp2Frame:
      shared_->http2 = true;
      h2_ = std::make_unique<Http2Parser>(limits_, s == Sniff::kHttp2Preface, out_);
      mode_ = Mode::kHttp2;
      dispatch(detect_meta_, bytes);
      return;
    case Sniff::kNeedMore:
    case Sniff::kOther:
      out_(raw_message(detect_meta_, std::move(bytes)));
      return;
  }
}

void StreamDecoder::flush() {
  if (!detect_.empty()) {
    std::string bytes = std::move(detect_);
    detect_.clear();
    out_(raw_message(detect_meta_, std::move(bytes)));
  }
  if (h1_) h1_->flush();
  if (h2_) h2_->flush();
}

size_t StreamDecoder::buffered() const {
  return detect_.size() + (h1_ ? h1_->buffered() : 0) + (h2_ ? h2_->buffered() : 0);
}

}  // namespace ecapture
