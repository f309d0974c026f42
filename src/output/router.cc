// Message fan-out to writers.
#include "output/router.h"

#include <fmt/format.h>

#include "output/audit_text.h"
#include "output/record_key.h"

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

void OutputRouter::send(const Route& r, const RecordMeta& meta, const std::string& encoded) {
  if (r.format == Format::kProtobuf && !r.writer->framed()) {
    r.writer->write_record(meta, length_delimited(encoded), true);
  } else {
    r.writer->write_record(meta, encoded, r.format == Format::kProtobuf);
  }
}

void OutputRouter::write(const Message& m) {
  std::lock_guard lock(mu_);
  std::string enc[3];
  bool done[3] = {false, false, false};
  const RecordMeta meta = record_meta(m);
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
    send(r, meta, enc[i]);
  }
}

void OutputRouter::write_audit(const AuditEvent& e) {
  std::lock_guard lock(mu_);
  const RecordMeta meta = record_meta(e);
  for (const auto& r : routes_) {
    switch (r.format) {
      case Format::kText:
        send(r, meta, encode_audit_text(e, TextOptions{hex_, audit_tsize_}));
        break;
      case Format::kJson: send(r, meta, encode_audit_json(e)); break;
      case Format::kProtobuf: send(r, meta, encode_audit_protobuf(e)); break;
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
    fmt::format_to(std::back_inserter(out), "{} {}: messages={} bytes={} dropped={}{}",
                   format_name(r.format), r.writer->name(), s.messages, s.bytes, s.dropped,
                   r.writer->detail());
  }
  return out;
}

std::vector<std::pair<Format, std::shared_ptr<Writer>>> OutputRouter::writers() const {
  auto* self = const_cast<OutputRouter*>(this);
  std::lock_guard lock(self->mu_);
  std::vector<std::pair<Format, std::shared_ptr<Writer>>> out;
  for (const auto& r : routes_) out.emplace_back(r.format, r.writer);
  return out;
}

}  // namespace ecapture
