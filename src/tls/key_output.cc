// Key log + pcapng output of the TLS modules.
#include "tls/key_output.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include "output/pcap_filter.h"

namespace ecapture::tls {

Result<std::unique_ptr<KeyOutput>> KeyOutput::open(const KeyOutputConfig& cfg) {
  std::unique_ptr<KeyOutput> out(new KeyOutput(cfg));
  if (cfg.pcap) {
    out->cfg_.ifname = cfg.ifname.empty() ? default_capture_interface() : cfg.ifname;
    if (if_nametoindex(out->cfg_.ifname.c_str()) == 0) {
      return make_error("-i {}: no such network interface (see `ip link`)", out->cfg_.ifname);
    }
    RETURN_IF_ERROR(PcapFilter::compile(cfg.filter));
    struct stat st {};
    if (::stat(cfg.pcapfile.c_str(), &st) == 0 && st.st_size > 0) {
      return make_error("-w {}: the file exists; ecapture does not overwrite captures (remove "
                        "it or choose another path)", cfg.pcapfile);
    }
    const auto slash = cfg.pcapfile.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : cfg.pcapfile.substr(0, slash + 1);
    if (::access(dir.c_str(), W_OK) != 0) {
      return make_errno_error(errno, "-w {}: cannot create the pcapng file in {}", cfg.pcapfile,
                              dir);
    }
  }
  ASSIGN_OR_RETURN(out->keylog_, KeylogWriter::open(cfg.keylogfile));
  return out;
}

KeyOutput::~KeyOutput() {
  stop();
  if (keylog_ && !started_) keylog_->discard_if_unused();
}

Result<void> KeyOutput::start(spdlog::logger& log) {
  log_ = &log;
  if (cfg_.pcap) {
    PcapSessionConfig pc{cfg_.ifname, cfg_.filter, cfg_.pcapfile, cfg_.owners};
    ASSIGN_OR_RETURN(pcap_, PcapSession::open(pc, log));
    PcapSession* file = pcap_.get();
    auto on_packet = [file](const bpf::Packet& p) { file->add_packet(p.mono_ns, p.data, p.len); };
    auto tick = [file] { file->tick(); };
    // The filter runs in the kernel: packets it rejects are never copied. Filtering in user space
    // is the fallback when the kernel cannot run the translated program;
    // ECAPTURE_TEST_USERSPACE_FILTER=1 forces it (for bench/).
    std::vector<bpf::ClassicInsn> insns;
    const char* userspace_only = std::getenv("ECAPTURE_TEST_USERSPACE_FILTER");
    if (userspace_only == nullptr || std::string_view(userspace_only) != "1") {
      insns = pcap_->kernel_filter();
    }
    const char* where = !insns.empty()        ? "in the kernel"
                        : cfg_.filter.empty() ? ""
                                              : "in user space";
    auto capture = bpf::TcCapture::start(cfg_.ifname, cfg_.mapsize_pages, insns, on_packet, tick);
    if (!capture && !insns.empty()) {
      log.warn("pcap: the filter cannot run in the kernel ({}); filtering in user space",
               capture.error().to_string());
      where = "in user space";
      capture = bpf::TcCapture::start(cfg_.ifname, cfg_.mapsize_pages, {}, on_packet, tick);
    }
    if (!capture) {
      pcap_->discard();
      pcap_.reset();
      return std::move(capture).error();
    }
    capture_ = std::move(capture).value();
    if (capture_->ring_capped()) {
      log.warn("pcap: --mapsize {} pages per CPU is capped to a {} MiB ring buffer",
               cfg_.mapsize_pages, bpf::kMaxRingBytes >> 20);
    }
    log.info("pcap: capturing packets on {} into {} (filter: {}{}{})", cfg_.ifname,
             cfg_.pcapfile, cfg_.filter.empty() ? "none" : cfg_.filter, *where ? ", applied " : "",
             where);
  }
  started_ = true;
  return {};
}

Result<bool> KeyOutput::add(std::span<const KeylogLine> lines, const ecap_sock_tuple* tuple,
                                 const PacketOwner& owner) {
  if (pcap_) {
    // Every process's secrets go to the pcap session, which needs the owners of all connections
    // to drop the packets of the ones --pid/--uid exclude.
    std::string text;
    for (const auto& l : lines) text += l.to_string() + "\n";
    pcap_->add_keys(text, tuple != nullptr && tuple->family != 0 ? tuple : nullptr, owner);
  }
  if (!cfg_.owners.wants(owner)) return false;
  for (const auto& l : lines) {
    if (auto r = keylog_->write(l); !r) {
      if (log_ != nullptr) {
        log_->error("keys: {}; no more lines go to it, the capture goes on",
                    r.error().to_string());
      }
      break;
    }
  }
  return true;
}

void KeyOutput::stop() {
  if (capture_) capture_->stop();  // drains: every packet captured reaches the file
  if (pcap_) pcap_->close();
}

uint64_t KeyOutput::lost() const { return capture_ ? capture_->lost() : 0; }

std::string default_capture_interface() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "wlan0";
  std::string first;
  bool wlan0 = false;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || !(a->ifa_flags & IFF_UP) || (a->ifa_flags & IFF_LOOPBACK)) {
      continue;
    }
    if (a->ifa_addr->sa_family != AF_INET && a->ifa_addr->sa_family != AF_INET6) continue;
    if (std::string(a->ifa_name) == "wlan0") wlan0 = true;
    if (first.empty()) first = a->ifa_name;
  }
  freeifaddrs(list);
  if (wlan0 || first.empty()) return "wlan0";
  return first;
}

}  // namespace ecapture::tls
