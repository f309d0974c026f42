// CaptureSession: attach, read, count and stop for every module.
#include "bpf/capture_session.h"

#include <bpf/bpf.h>

#include <cstring>
#include <set>

#include "core/clock.h"
#include "ecap_abi.h"

namespace ecapture::bpf {
namespace {
constexpr uint64_t kRefreshNs = 1'000'000'000;
}  // namespace

void CaptureSession::own(bpf_object* obj, std::function<void()> destroy,
                         uint64_t mapsize_pages) {
  obj_ = obj;
  destroy_ = std::move(destroy);
  mapsize_pages_ = mapsize_pages;
}

Result<AttachResult> CaptureSession::attach(const std::vector<ProbeSpec>& specs, int pid,
                                            const std::string& hint) {
  if (obj_ == nullptr) return make_error("{}: attach before load", what_);
  ASSIGN_OR_RETURN(auto tracepoints, attach_tracepoints(obj_));
  for (auto& l : tracepoints) links_.push_back(std::move(l));
  ASSIGN_OR_RETURN(AttachResult attached,
                   attach_uprobes(obj_, specs, pid, hint, loaded_.uprobe_multi));
  for (auto& l : attached.links) links_.push_back(std::move(l));
  attached.links.clear();
  std::set<std::string> files(probed_.begin(), probed_.end());
  for (const auto& s : specs) files.insert(s.binary);
  probed_.assign(files.begin(), files.end());
  if (counters_ != nullptr) counters_->targets.store(probed_.size());
  return attached;
}

Result<AttachResult> CaptureSession::attach_group(uint64_t key, const std::vector<ProbeSpec>& specs,
                                                  int pid, const std::string& hint) {
  std::lock_guard lock(groups_mu_);
  if (obj_ == nullptr || detached_) return make_error("{}: the capture is stopping", what_);
  ASSIGN_OR_RETURN(AttachResult attached,
                   attach_uprobes(obj_, specs, pid, hint, loaded_.uprobe_multi));
  auto& links = groups_[key];
  for (auto& l : attached.links) links.push_back(std::move(l));
  attached.links.clear();
  if (counters_ != nullptr) counters_->targets.store(probed_.size() + groups_.size());
  return attached;
}

void CaptureSession::detach_group(uint64_t key) {
  std::lock_guard lock(groups_mu_);
  auto it = groups_.find(key);
  if (it == groups_.end()) return;
  destroy_links(it->second);
  groups_.erase(it);
  if (counters_ != nullptr) counters_->targets.store(probed_.size() + groups_.size());
}

size_t CaptureSession::purge_process(const std::vector<std::string>& maps, uint32_t tgid) {
  size_t purged = 0;
  for (const std::string& name : maps) {
    bpf_map* map = obj_ != nullptr ? bpf_object__find_map_by_name(obj_, name.c_str()) : nullptr;
    if (map == nullptr || bpf_map__key_size(map) < sizeof(uint32_t)) continue;
    const int fd = bpf_map__fd(map);
    std::vector<uint8_t> key(bpf_map__key_size(map)), next(key.size());
    std::vector<std::vector<uint8_t>> doomed;
    for (const void* prev = nullptr; bpf_map_get_next_key(fd, prev, next.data()) == 0;
         prev = key.data()) {
      uint32_t owner = 0;
      std::memcpy(&owner, next.data(), sizeof(owner));
      if (owner == tgid) doomed.push_back(next);
      key.swap(next);
    }
    for (const auto& k : doomed) purged += bpf_map_delete_elem(fd, k.data()) == 0 ? 1 : 0;
  }
  return purged;
}

size_t CaptureSession::links() const {
  std::lock_guard lock(groups_mu_);
  size_t n = links_.size();
  for (const auto& [key, links] : groups_) n += links.size();
  return n;
}

void CaptureSession::detach_all() {
  std::vector<Link> all = std::move(links_);
  links_.clear();
  std::lock_guard lock(groups_mu_);
  for (auto& [key, links] : groups_) {
    for (auto& l : links) all.push_back(std::move(l));
  }
  groups_.clear();
  destroy_links(all);
}

Result<void> CaptureSession::start_reader(EventReader::Handler handler, EventReader::Tick tick,
                                          std::function<void(const Error&)> on_fail) {
  bpf_map* events = obj_ != nullptr ? bpf_object__find_map_by_name(obj_, "events") : nullptr;
  if (events == nullptr) return make_error("{}: the BPF object has no events map", what_);
  auto periodic = [this, tick = std::move(tick)] {
    if (tick) tick();
    const uint64_t now = monotonic_now_ns();
    if (now >= last_refresh_ns_ + kRefreshNs) {
      last_refresh_ns_ = now;
      refresh_counters();
    }
  };
  ASSIGN_OR_RETURN(reader_, EventReader::create(events, loaded_.ringbuf, mapsize_pages_,
                                                std::move(handler), std::move(periodic)));
  reader_->on_record_error([this](const Error& e, uint64_t count) {
    if (counters_ != nullptr) counters_->decode_errors.store(count);
    if (count == 1 && log_ != nullptr) {
      log_->warn("{}: a record could not be decoded (counted as decode_errors; only the first "
                 "is logged): {}", what_, e.to_string());
    }
  });
  reader_->on_poll_error(std::move(on_fail));
  reader_->start();
  return {};
}

void CaptureSession::refresh_counters() {
  if (counters_ == nullptr) return;
  bpf_map* kernel = obj_ != nullptr ? bpf_object__find_map_by_name(obj_, "ecap_counters") : nullptr;
  counters_->lost.store(lost_records(kernel, reader_.get()));
  if (kernel != nullptr) {
    counters_->map_update_failures.store(read_percpu_counter(kernel, ECAP_CNT_MAP_FAILED));
  }
  if (reader_) counters_->decode_errors.store(reader_->decode_errors());
}

void CaptureSession::stop() {
  {
    std::lock_guard lock(groups_mu_);
    detached_ = true;
  }
  detach_all();                  // no new records from here on
  if (reader_) reader_->stop();  // drains what the kernel already produced
  refresh_counters();
}

void CaptureSession::close() {
  detach_all();
  reader_.reset();
  if (destroy_) destroy_();
  destroy_ = nullptr;
  obj_ = nullptr;
  probed_.clear();
  detached_ = false;
}

}  // namespace ecapture::bpf
