// Where a TLS module's secrets go in keylog and pcap modes: the key log file, and in pcap mode
// the pcapng file too (Decryption Secrets Blocks), with the connection's owner so that packets
// carry its pid/comm and --pid/--uid apply to them. Shared by the tls, gotls and gnutls modules.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include <spdlog/logger.h>

#include "core/result.h"
#include "ecap_abi.h"
#include "bpf/tc_capture.h"
#include "output/keylog_writer.h"
#include "output/pcap_session.h"

namespace ecapture::tls {

struct KeyOutputConfig {
  bool pcap = false;       // -m pcap; otherwise -m keylog
  std::string keylogfile;  // -k
  std::string pcapfile;    // -w
  std::string ifname;      // -i; "" picks default_capture_interface()
  std::string filter;      // trailing pcap filter expression
  OwnerFilter owners;      // --pid, --uid, --cgroup_path
  uint64_t mapsize_pages = 1024;
};

class KeyOutput {
 public:
  // Checks everything a user can get wrong (interface, filter, an existing or unwritable pcapng
  // path) before touching any file, then opens the key log (appending, 0600).
  static Result<std::unique_ptr<KeyOutput>> open(const KeyOutputConfig& cfg);
  // Removes a key log file this output created if the capture never started and wrote nothing.
  ~KeyOutput();
  KeyOutput(const KeyOutput&) = delete;
  KeyOutput& operator=(const KeyOutput&) = delete;

  // Starts the packet capture (pcap mode: the TC programs feed the pcapng file); marks the output
  // as in use.
  Result<void> start(spdlog::logger& log);
  // One session's lines, owned by `owner` on `tuple` (may be null). Returns false when --pid/--uid
  // exclude the owner (its lines only serve the pcapng's packet filtering), else true (lines the
  // key log already has, e.g. from the other end of a local connection, are not repeated).
  // A key log that cannot be written (full disk) is logged once; the capture goes on.
  Result<bool> add(std::span<const KeylogLine> lines, const ecap_sock_tuple* tuple,
                     const PacketOwner& owner);
  // Closes the pcapng file after writing what it holds. Call after the last add().
  void stop();
  uint64_t lost() const;
  const std::string& keylog_path() const { return keylog_->path(); }
  const std::string& ifname() const { return cfg_.ifname; }

 private:
  explicit KeyOutput(KeyOutputConfig cfg) : cfg_(std::move(cfg)) {}
  KeyOutputConfig cfg_;
  std::unique_ptr<KeylogWriter> keylog_;
  std::unique_ptr<PcapSession> pcap_;
  std::unique_ptr<bpf::TcCapture> capture_;  // feeds pcap_
  spdlog::logger* log_ = nullptr;
  bool started_ = false;
};

// eCapture's default for -i: wlan0 when it is up with an address, else the first other interface
// that is up, not loopback and has an address; wlan0 when there is none.
std::string default_capture_interface();

}  // namespace ecapture::tls
