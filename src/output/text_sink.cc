// Text sink: encode and write under one lock so blocks never interleave.
#include "output/text_sink.h"

namespace ecapture {

void TextSink::emit(const DataEvent& event) {
  std::lock_guard lock(mu_);
  std::string block = encode_text(event, options_);
  std::fwrite(block.data(), 1, block.size(), out_);
  std::fflush(out_);
}

void TextSink::emit_audit(const AuditEvent& event) {
  std::lock_guard lock(mu_);
  std::string block = encode_audit_text(event, options_);
  std::fwrite(block.data(), 1, block.size(), out_);
  std::fflush(out_);
}

void TextSink::flush() {
  std::lock_guard lock(mu_);
  std::fflush(out_);
}

void TextSink::set_options(TextOptions options) {
  std::lock_guard lock(mu_);
  options_ = options;
}

}  // namespace ecapture
