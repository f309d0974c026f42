// Packet filtering, ownership, ordering (secrets before packets) and pcapng output.
#include "output/pcap_session.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>
#include <ctime>

#include "core/cgroup.h"
#include "core/clock.h"
#include "core/version.h"

namespace ecapture {
namespace {

// Packets wait this long before being written, so that the secrets of their connection (which
// come through another ring buffer) are in the file first.
constexpr uint64_t kHoldNs = 500'000'000;
constexpr uint64_t kFlushNs = 1'000'000'000;

}  // namespace

std::string endpoint_key(uint16_t family, const uint8_t* addr, uint16_t port) {
  std::string k(1, static_cast<char>(family));
  k.append(reinterpret_cast<const char*>(addr), family == AF_INET ? 4 : 16);
  k.append(reinterpret_cast<const char*>(&port), 2);
  return k;
}

FrameEndpoints frame_endpoints(std::span<const uint8_t> f) {
  if (f.size() < 14) return {};
  uint16_t ethertype = static_cast<uint16_t>(f[12] << 8 | f[13]);
  auto port_at = [&](size_t off) { return static_cast<uint16_t>(f[off] << 8 | f[off + 1]); };
  if (ethertype == 0x0800 && f.size() >= 34) {
    size_t l4 = 14 + (f[14] & 0x0f) * 4u;
    uint8_t proto = f[23];
    if ((proto != 6 && proto != 17) || f.size() < l4 + 4) return {};
    return {endpoint_key(AF_INET, &f[26], port_at(l4)),
            endpoint_key(AF_INET, &f[30], port_at(l4 + 2))};
  }
  if (ethertype == 0x86DD && f.size() >= 58) {
    uint8_t next = f[20];
    if (next != 6 && next != 17) return {};
    return {endpoint_key(AF_INET6, &f[22], port_at(54)),
            endpoint_key(AF_INET6, &f[38], port_at(56))};
  }
  return {};
}

Result<std::unique_ptr<PcapSession>> PcapSession::open(const PcapSessionConfig& cfg,
                                                       spdlog::logger& log) {
  std::unique_ptr<PcapSession> s(new PcapSession(cfg, log));
  ASSIGN_OR_RETURN(s->filter_, PcapFilter::compile(cfg.filter));
  s->mono_to_wall_ns_ = monotonic_to_wall_ns();
  PcapngInterface iface{cfg.ifname, 1, cfg.filter, 262144};
  ASSIGN_OR_RETURN(s->writer_,
                   PcapngWriter::create(cfg.path, {iface}, fmt::format("ecapture {}", kVersion)));
  return s;
}

void PcapSession::tick() { write_due(monotonic_now_ns(), false); }

void PcapSession::discard() {
  std::lock_guard lock(mu_);
  closed_ = true;
  if (!writer_) return;
  writer_.reset();
  ::unlink(cfg_.path.c_str());
}

PcapSession::~PcapSession() { close(); }

void PcapSession::add_packet(uint64_t mono_ns, std::span<const uint8_t> frame,
                             uint32_t original_len) {
  if (!filter_->matches(frame, original_len)) {
    std::lock_guard lock(mu_);
    ++filtered_out_;
    return;
  }
  Held h{mono_ns, std::vector<uint8_t>(frame.begin(), frame.end()), original_len,
         frame_endpoints(frame)};
  std::lock_guard lock(mu_);
  held_.push_back(std::move(h));
}

bool OwnerFilter::wants(const PacketOwner& o) const {
  if ((pid != 0 && o.pid != pid) || (uid != 0 && o.uid != uid)) return false;
  if (cgroup.empty()) return true;
  auto info = CgroupResolver::host().lookup(o.cgroup_id);
  return info != nullptr && cgroup_path_under(info->path, cgroup);
}

void PcapSession::add_keys(const std::string& keylog_lines, const ecap_sock_tuple* t,
                           const PacketOwner& owner) {
  std::lock_guard lock(mu_);
  if (t != nullptr && (t->family == AF_INET || t->family == AF_INET6)) {
    owners_[endpoint_key(t->family, t->laddr, t->lport)] = owner;
  }
  if (cfg_.owners.wants(owner)) pending_secrets_ += keylog_lines;
}

void PcapSession::write_due(uint64_t now, bool all) {
  std::lock_guard lock(mu_);
  if (closed_ || !writer_) return;
  bool wrote = false;
  if (!pending_secrets_.empty()) {
    if (auto r = writer_->write_secrets(pending_secrets_); !r) {
      log_.error("pcap: {}", r.error().to_string());
    }
    pending_secrets_.clear();
    wrote = true;
  }
  while (!held_.empty() && (all || held_.front().mono_ns + kHoldNs <= now)) {
    Held& h = held_.front();
    // The comment names the process that sent the packet, else the one it was sent to (on lo
    // both ends are local). --pid/--uid drop packets whose known owners all differ.
    auto lookup = [&](const std::string& k) -> const PacketOwner* {
      if (k.empty()) return nullptr;
      auto o = owners_.find(k);
      return o == owners_.end() ? nullptr : &o->second;
    };
    auto wanted = [&](const PacketOwner* w) { return w != nullptr && cfg_.owners.wants(*w); };
    const PacketOwner* sender = lookup(h.ends.src);
    const PacketOwner* receiver = lookup(h.ends.dst);
    if ((sender || receiver) && !wanted(sender) && !wanted(receiver)) {
      ++filtered_out_;
      held_.pop_front();
      continue;
    }
    std::string comment;
    if (const PacketOwner* w = wanted(sender) ? sender : receiver) {
      comment = fmt::format("pid={} comm={}", w->pid, w->comm);
    }
    uint64_t wall = static_cast<uint64_t>(static_cast<int64_t>(h.mono_ns) + mono_to_wall_ns_);
    if (auto r = writer_->write_packet(0, wall, h.frame, h.original_len, comment); !r) {
      log_.error("pcap: {}", r.error().to_string());
    }
    held_.pop_front();
    wrote = true;
  }
  // Whatever was written reaches the file within kFlushNs, even if nothing follows it.
  unflushed_ = unflushed_ || wrote;
  if (all || (unflushed_ && now >= last_flush_ns_ + kFlushNs)) {
    if (auto r = writer_->flush(); !r) log_.error("pcap: {}", r.error().to_string());
    last_flush_ns_ = now;
    unflushed_ = false;
  }
}

void PcapSession::close() {
  write_due(monotonic_now_ns(), true);
  std::lock_guard lock(mu_);
  if (closed_) return;
  closed_ = true;
  if (writer_) {
    log_.info("pcap: {} packets written to {} ({} filtered out)", writer_->packets(),
              writer_->path(), filtered_out_);
    writer_.reset();
  }
}

}  // namespace ecapture
