// pcapng blocks (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html), host order.
#include "output/pcapng_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <memory>

namespace ecapture {
namespace {

constexpr uint32_t kShb = 0x0A0D0D0A, kIdb = 1, kEpb = 6, kDsb = 0x0A;
constexpr uint32_t kTlsKeyLog = 0x544c534b;  // "TLSK"

class Block {
 public:
  explicit Block(uint32_t type) {
    buf_.reserve(64);
    u32(type);
    u32(0);
  }
  Block& u16(uint16_t v) { return raw(&v, 2); }
  Block& u32(uint32_t v) { return raw(&v, 4); }
  Block& u64(uint64_t v) { return raw(&v, 8); }
  Block& raw(const void* p, size_t n) {
    if (n == 0) return *this;
    size_t old = buf_.size();
    buf_.resize(old + n);  // (insert() trips a GCC 12 -Wstringop-overflow false positive)
    std::memcpy(buf_.data() + old, p, n);
    return *this;
  }
  Block& pad() {
    while (buf_.size() % 4) buf_.push_back(0);
    return *this;
  }
  Block& option(uint16_t code, std::string_view value) {
    u16(code), u16(static_cast<uint16_t>(value.size()));
    raw(value.data(), value.size());
    return pad();
  }
  Block& end_options() { return u16(0), u16(0); }
  std::vector<uint8_t> finish() {
    pad();
    uint32_t total = static_cast<uint32_t>(buf_.size() + 4);
    std::memcpy(buf_.data() + 4, &total, 4);
    u32(total);
    return std::move(buf_);
  }

 private:
  std::vector<uint8_t> buf_;
};

}  // namespace

std::vector<uint8_t> pcapng_section_header(const std::string& application) {
  Block b(kShb);
  b.u32(0x1A2B3C4D).u16(1).u16(0).u64(~0ull);
  b.option(4, application);  // shb_userappl
  b.end_options();
  return b.finish();
}

std::vector<uint8_t> pcapng_interface(const PcapngInterface& iface) {
  Block b(kIdb);
  b.u16(iface.linktype).u16(0).u32(iface.snaplen);
  b.option(2, iface.name);                     // if_name
  uint8_t nanoseconds = 9;
  b.option(9, std::string_view(reinterpret_cast<char*>(&nanoseconds), 1));  // if_tsresol
  if (!iface.filter.empty()) {
    std::string f(1, '\0');                    // if_filter: 0 = libpcap filter string
    f += iface.filter;
    b.option(11, f);
  }
  b.end_options();
  return b.finish();
}

std::vector<uint8_t> pcapng_packet(uint32_t interface_id, uint64_t ts_ns,
                                   std::span<const uint8_t> data, uint32_t original_len,
                                   const std::string& comment) {
  Block b(kEpb);
  b.u32(interface_id).u32(static_cast<uint32_t>(ts_ns >> 32)).u32(static_cast<uint32_t>(ts_ns));
  b.u32(static_cast<uint32_t>(data.size())).u32(original_len);
  b.raw(data.data(), data.size()).pad();
  if (!comment.empty()) {
    b.option(1, comment);  // opt_comment
    b.end_options();
  }
  return b.finish();
}

std::vector<uint8_t> pcapng_secrets(const std::string& keylog_lines) {
  Block b(kDsb);
  b.u32(kTlsKeyLog).u32(static_cast<uint32_t>(keylog_lines.size()));
  b.raw(keylog_lines.data(), keylog_lines.size());
  return b.finish();
}

Result<std::unique_ptr<PcapngWriter>> PcapngWriter::create(
    const std::string& path, const std::vector<PcapngInterface>& ifaces,
    const std::string& application) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && st.st_size > 0) {
    return make_error("-w {}: the file exists; ecapture does not overwrite captures (remove it "
                      "or choose another path)", path);
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return make_errno_error(errno, "-w {}: cannot create the pcapng file", path);
  std::unique_ptr<PcapngWriter> w(new PcapngWriter(path, fd));
  RETURN_IF_ERROR(w->put(pcapng_section_header(application)));
  for (const auto& i : ifaces) RETURN_IF_ERROR(w->put(pcapng_interface(i)));
  RETURN_IF_ERROR(w->flush());
  return w;
}

PcapngWriter::~PcapngWriter() {
  if (fd_ >= 0) {
    (void)flush();
    ::close(fd_);
  }
}

Result<void> PcapngWriter::put(const std::vector<uint8_t>& block) {
  // Only whole blocks reach the file, so that it ends on a block boundary whenever the process
  // dies (stdio would cut a block wherever its buffer filled up).
  pending_.insert(pending_.end(), block.begin(), block.end());
  if (pending_.size() >= kPendingMax) return flush();
  return {};
}

Result<void> PcapngWriter::write_secrets(const std::string& keylog_lines) {
  return put(pcapng_secrets(keylog_lines));
}

Result<void> PcapngWriter::write_packet(uint32_t interface_id, uint64_t wall_ns,
                                        std::span<const uint8_t> data, uint32_t original_len,
                                        const std::string& comment) {
  ++packets_;
  return put(pcapng_packet(interface_id, wall_ns, data, original_len, comment));
}

Result<void> PcapngWriter::flush() {
  if (failed_) {
    dropped_ += pending_.size();
    pending_.clear();
    return {};
  }
  size_t off = 0;
  while (off < pending_.size()) {
    ssize_t n = ::write(fd_, pending_.data() + off, pending_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      // A full disk: the file keeps the blocks of the previous flushes, whole, and is never
      // appended to again (a later, smaller block could fit and leave a hole in the capture).
      if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
      }
      failed_ = true;
      dropped_ += pending_.size();
      pending_.clear();
      return make_errno_error(err, "cannot write {} (it keeps what was written until now; "
                              "later packets are dropped)", path_);
    }
    off += static_cast<size_t>(n);
  }
  size_ += pending_.size();
  pending_.clear();
  return {};
}

}  // namespace ecapture
