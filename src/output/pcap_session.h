// pcap mode's file: packets (from whatever captures them), filtered by a libpcap expression, tied
// to processes through the 4-tuples the TLS probes learn, written to pcapng after the TLS secrets
// that decrypt them (Decryption Secrets Blocks).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "core/result.h"
#include "ecap_abi.h"
#include "output/pcap_filter.h"
#include "output/pcapng_writer.h"

namespace ecapture {

struct PacketOwner {
  uint32_t pid = 0;
  uint32_t uid = 0;
  std::string comm;
  uint64_t cgroup_id = 0;
};

// The owners --pid, --uid and --cgroup_path keep (0 and "" keep every one).
struct OwnerFilter {
  uint64_t pid = 0;
  uint64_t uid = 0;
  std::string cgroup;  // a cgroup path ("/a/b"): the owner's cgroup is it or below it

  bool wants(const PacketOwner& o) const;
};

struct PcapSessionConfig {
  std::string ifname;
  std::string filter;  // libpcap syntax, "" for all
  std::string path;
  OwnerFilter owners;  // drop packets whose owner is known and not wanted
};

// Key of one endpoint (address + host-order port) of a TCP/UDP connection.
std::string endpoint_key(uint16_t family, const uint8_t* addr, uint16_t port);

struct FrameEndpoints {
  std::string src, dst;  // endpoint keys; empty when the frame is not IPv4/IPv6 TCP/UDP
};
FrameEndpoints frame_endpoints(std::span<const uint8_t> frame);

class PcapSession {
 public:
  // Compiles the filter and creates the file.
  static Result<std::unique_ptr<PcapSession>> open(const PcapSessionConfig& cfg,
                                                   spdlog::logger& log);
  ~PcapSession();

  // Secrets of the connection `tuple` (may be null) owned by `owner`, as key log lines.
  void add_keys(const std::string& keylog_lines, const ecap_sock_tuple* tuple,
                const PacketOwner& owner);
  // One captured frame (CLOCK_MONOTONIC time, the bytes captured, its length on the wire).
  void add_packet(uint64_t mono_ns, std::span<const uint8_t> frame, uint32_t original_len);
  // Writes what is due (packets wait briefly for their connection's secrets) and flushes.
  void tick();
  // The filter as classic BPF, for a packet source that can run it in the kernel (packets that
  // reach add_packet are matched again, which costs little once the kernel has filtered).
  std::vector<bpf::ClassicInsn> kernel_filter() const { return filter_->instructions(); }
  // Writes everything still held. Idempotent.
  void close();
  // Closes and removes the file, for a capture that never started (it holds no packet).
  void discard();

 private:
  struct Held {
    uint64_t mono_ns;
    std::vector<uint8_t> frame;
    uint32_t original_len;
    FrameEndpoints ends;
  };
  PcapSession(PcapSessionConfig cfg, spdlog::logger& log) : cfg_(std::move(cfg)), log_(log) {}
  void write_due(uint64_t now_mono_ns, bool all);

  PcapSessionConfig cfg_;
  spdlog::logger& log_;
  int64_t mono_to_wall_ns_ = 0;
  std::unique_ptr<PcapFilter> filter_;
  std::unique_ptr<PcapngWriter> writer_;
  std::mutex mu_;
  std::string pending_secrets_;
  std::deque<Held> held_;
  std::map<std::string, PacketOwner> owners_;  // local endpoint -> process owning it
  uint64_t last_flush_ns_ = 0;
  bool unflushed_ = false;  // blocks written since the last flush
  uint64_t filtered_out_ = 0;
  bool closed_ = false;
};

}  // namespace ecapture
