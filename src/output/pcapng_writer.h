// pcapng file writer: Section Header, Interface Description (with the capture filter and
// nanosecond timestamps), Enhanced Packet Blocks with an optional comment, and Decryption Secrets
// Blocks (TLS key log) so that Wireshark decrypts the file without any other input.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"

namespace ecapture {

struct PcapngInterface {
  std::string name;
  uint16_t linktype = 1;  // LINKTYPE_ETHERNET
  std::string filter;     // libpcap filter expression, "" for none
  uint32_t snaplen = 262144;
};

class PcapngWriter {
 public:
  // Creates `path` (0644). An existing non-empty file is refused, never overwritten.
  static Result<std::unique_ptr<PcapngWriter>> create(const std::string& path,
                                                      const std::vector<PcapngInterface>& ifaces,
                                                      const std::string& application);
  ~PcapngWriter();
  PcapngWriter(const PcapngWriter&) = delete;
  PcapngWriter& operator=(const PcapngWriter&) = delete;

  Result<void> write_secrets(const std::string& keylog_lines);  // NSS key log text, '\n'-ended
  Result<void> write_packet(uint32_t interface_id, uint64_t wall_ns,
                            std::span<const uint8_t> data, uint32_t original_len,
                            const std::string& comment);
  // Hands everything written so far to the kernel: readable after a SIGKILL from here on. The
  // first failure (a full disk) is returned; the file is cut back to its last whole flush and
  // later blocks are dropped.
  Result<void> flush();
  uint64_t dropped_bytes() const { return dropped_; }
  uint64_t packets() const { return packets_; }
  const std::string& path() const { return path_; }

 private:
  static constexpr size_t kPendingMax = 1u << 20;
  PcapngWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  Result<void> put(const std::vector<uint8_t>& block);
  std::string path_;
  int fd_ = -1;
  std::vector<uint8_t> pending_;  // whole blocks not yet written
  uint64_t size_ = 0;             // bytes in the file, all whole blocks
  bool failed_ = false;           // a write failed: nothing more is written
  uint64_t dropped_ = 0;          // bytes not written since
  uint64_t packets_ = 0;
};

// Block builders, exposed for tests.
std::vector<uint8_t> pcapng_section_header(const std::string& application);
std::vector<uint8_t> pcapng_interface(const PcapngInterface& iface);
std::vector<uint8_t> pcapng_packet(uint32_t interface_id, uint64_t ts_ns,
                                   std::span<const uint8_t> data, uint32_t original_len,
                                   const std::string& comment);
std::vector<uint8_t> pcapng_secrets(const std::string& keylog_lines);

}  // namespace ecapture
