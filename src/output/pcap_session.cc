// Packet filtering, ownership, ordering (secrets before packets) and pcapng output.
#include "output/pcap_session.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>
#include <ctime>

#include "core/version.h"

namespace ecapture {
namespace {

// Packets wait this long before being written, so that the secrets of their connection (which
// come through another ring buffer) are in the file first.
constexpr uint64_t kHoldNs = 500'000'000;
constexpr uint64_t kFlushNs = 1'000'000'000;

uint64_t now_mono_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}

int64_t mono_to_wall() {
  timespec rt{}, mono{};
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  return (static_cast<int64_t>(rt.tv_sec) - mono.tv_sec) * 1000000000ll +
         (static_cast<int64_t>(rt.tv_nsec) - mono.tv_nsec);
}

}  // namespace

std::string connection_key(uint16_t family, const uint8_t* a, uint16_t aport, const uint8_t* b,
                           uint16_t bport) {
  size_t n = family == AF_INET ? 4 : 16;
  std::string ea(reinterpret_cast<const char*>(a), n), eb(reinterpret_cast<const char*>(b), n);
  ea.append(reinterpret_cast<const char*>(&aport), 2);
  eb.append(reinterpret_cast<const char*>(&bport), 2);
  if (eb < ea) std::swap(ea, eb);
  return std::string(1, static_cast<char>(family)) + ea + eb;
}

std::string frame_connection_key(std::span<const uint8_t> f) {
  if (f.size() < 14) return "";
  uint16_t ethertype = static_cast<uint16_t>(f[12] << 8 | f[13]);
  auto l4_ports = [&](size_t off, uint16_t* sp, uint16_t* dp) {
    if (f.size() < off + 4) return false;
    *sp = static_cast<uint16_t>(f[off] << 8 | f[off + 1]);
    *dp = static_cast<uint16_t>(f[off + 2] << 8 | f[off + 3]);
    return true;
  };
  uint16_t sp = 0, dp = 0;
  if (ethertype == 0x0800 && f.size() >= 34) {
    size_t ihl = (f[14] & 0x0f) * 4u;
    uint8_t proto = f[23];
    if ((proto != 6 && proto != 17) || !l4_ports(14 + ihl, &sp, &dp)) return "";
    return connection_key(AF_INET, &f[26], sp, &f[30], dp);
  }
  if (ethertype == 0x86DD && f.size() >= 54) {
    uint8_t next = f[20];
    if ((next != 6 && next != 17) || !l4_ports(54, &sp, &dp)) return "";
    return connection_key(AF_INET6, &f[22], sp, &f[38], dp);
  }
  return "";
}

Result<std::unique_ptr<PcapSession>> PcapSession::start(const PcapSessionConfig& cfg,
                                                        spdlog::logger& log) {
  std::unique_ptr<PcapSession> s(new PcapSession(cfg, log));
  ASSIGN_OR_RETURN(s->filter_, PcapFilter::compile(cfg.filter));
  s->mono_to_wall_ns_ = mono_to_wall();
  PcapngInterface iface{cfg.ifname, 1, cfg.filter, 262144};
  ASSIGN_OR_RETURN(s->writer_,
                   PcapngWriter::create(cfg.path, {iface}, fmt::format("ecapture {}", kVersion)));
  PcapSession* self = s.get();
  auto capture = bpf::TcCapture::start(
      cfg.ifname, cfg.mapsize_pages, [self](const bpf::Packet& p) { self->on_packet(p); },
      [self] { self->write_due(now_mono_ns(), false); });
  if (!capture) {
    s->writer_.reset();
    ::unlink(cfg.path.c_str());  // we created it a moment ago; it holds no packet
    return std::move(capture).error();
  }
  s->capture_ = std::move(capture).value();
  log.info("pcap: capturing packets on {} into {} (filter: {}, applied in user space)",
           cfg.ifname, cfg.path, cfg.filter.empty() ? "none" : cfg.filter);
  return s;
}

PcapSession::~PcapSession() { close(); }

void PcapSession::on_packet(const bpf::Packet& p) {
  if (!filter_->matches(p.data, p.len)) {
    std::lock_guard lock(mu_);
    ++filtered_out_;
    return;
  }
  Held h{p.mono_ns, std::vector<uint8_t>(p.data.begin(), p.data.end()), p.len,
         frame_connection_key(p.data)};
  std::lock_guard lock(mu_);
  held_.push_back(std::move(h));
}

void PcapSession::add_keys(const std::string& keylog_lines, const ecap_sock_tuple* t,
                           const PacketOwner& owner) {
  std::lock_guard lock(mu_);
  if (t != nullptr && (t->family == AF_INET || t->family == AF_INET6)) {
    owners_[connection_key(t->family, t->laddr, t->lport, t->raddr, t->rport)] = owner;
  }
  bool wanted = (cfg_.pid == 0 || owner.pid == cfg_.pid) && (cfg_.uid == 0 || owner.uid == cfg_.uid);
  if (wanted) pending_secrets_ += keylog_lines;
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
    std::string comment;
    if (auto o = owners_.find(h.conn); o != owners_.end()) {
      const PacketOwner& w = o->second;
      bool wanted = (cfg_.pid == 0 || w.pid == cfg_.pid) && (cfg_.uid == 0 || w.uid == cfg_.uid);
      if (!wanted) {
        ++filtered_out_;
        held_.pop_front();
        continue;
      }
      comment = fmt::format("pid={} comm={}", w.pid, w.comm);
    }
    uint64_t wall = static_cast<uint64_t>(static_cast<int64_t>(h.mono_ns) + mono_to_wall_ns_);
    if (auto r = writer_->write_packet(0, wall, h.frame, h.original_len, comment); !r) {
      log_.error("pcap: {}", r.error().to_string());
    }
    held_.pop_front();
    wrote = true;
  }
  if (all || (wrote && now >= last_flush_ns_ + kFlushNs)) {
    if (auto r = writer_->flush(); !r) log_.error("pcap: {}", r.error().to_string());
    last_flush_ns_ = now;
  }
}

void PcapSession::close() {
  if (capture_) capture_->stop();
  write_due(now_mono_ns(), true);
  std::lock_guard lock(mu_);
  if (closed_) return;
  closed_ = true;
  if (writer_) {
    log_.info("pcap: {} packets written to {} ({} filtered out)", writer_->packets(),
              writer_->path(), filtered_out_);
    writer_.reset();
  }
}

uint64_t PcapSession::lost() const { return capture_ ? capture_->lost() : 0; }

}  // namespace ecapture
