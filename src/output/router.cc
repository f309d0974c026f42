// Message fan-out to writers.
#include "output/router.h"

#include <fmt/format.h>

#include "output/audit_text.h"

namespace ecapture {

OutputRouter::~OutputRouter() { close(); }

void OutputRouter::add(Format format, std::shared_ptr<Writer> writer) {
  std::lock_guard lock(mu_);
  routes_.push_back(Route{format, std::move(writer)});
}

void OutputRouter::set_options(bool hex, uint64_t audit_tsize) {
  std::lock_guard lock(mu_);
  hex_ = hex;
  audit_tsize_ = audit_tsize;
}

void OutputRouter::send(const Route& r, const std::string& encoded) {
  if (r.format == Format::kProtobuf && !r.writer->framed()) {
    r.writer->write(length_delimited(encoded), true);
  } else {
    r.writer->write(encoded, r.format == Format::kProtobuf);
  }
}

void OutputRouter::write(const Message& m) {
  std::lock_guard lock(mu_);
  std::string enc[3];
  bool done[3] = {false, false, false};
  for (const auto& r : routes_) {
    auto i = static_cast<size_t>(r.format);
    if (!done[i]) {
      switch (r.format) {
        case Format::kText: enc[i] = encode_message_text(m, hex_); break;
        case Format::kJson: enc[i] = encode_message_json(m); break;
        case Format::kProtobuf: enc[i] = encode_message_protobuf(m); break;
      }
      done[i] = true;
    }
    send(r, enc[i]);
  }
}

void OutputRouter::write_audit(const AuditEvent& e) {
  std::lock_guard lock(mu_);
  for (const auto& r : routes_) {
    switch (r.format) {
      case Format::kText: send(r, encode_audit_text(e, TextOptions{hex_, audit_tsize_})); break;
      case Format::kJson: send(r, encode_audit_json(e)); break;
      case Format::kProtobuf: send(r, encode_audit_protobuf(e)); break;
    }
  }
}

void OutputRouter::flush() {
  std::lock_guard lock(mu_);
  for (const auto& r : routes_) r.writer->flush();
}

void OutputRouter::close() {
  std::lock_guard lock(mu_);
  for (const auto& r : routes_) {
    r.writer->flush();
    r.writer->close();
  }
}

std::string OutputRouter::summary() const {
  auto* self = const_cast<OutputRouter*>(this);
  std::lock_guard lock(self->mu_);
  std::string out;
  for (const auto& r : routes_) {
    WriterStats s = r.writer->stats();
    if (!out.empty()) out += "; ";
    fmt::format_to(std::back_inserter(out), "{} {}: messages={} bytes={} dropped={}",
                   format_name(r.format), r.writer->name(), s.messages, s.bytes, s.dropped);
  }
  return out;
}

}  // namespace ecapture
