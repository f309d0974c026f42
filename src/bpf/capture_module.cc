// CaptureModule: the stop and close every module shares.
#include "bpf/capture_module.h"

namespace ecapture::bpf {

CaptureSession& CaptureModule::session() {
  session_.bind(&counters_mut(), &log(), name());
  return session_;
}

SkeletonSettings CaptureModule::skeleton_settings() const {
  const GlobalConfig& g = config()->global;
  SkeletonSettings s;
  s.btf_custom_path = btf().custom_path;
  s.pid = static_cast<uint32_t>(g.pid);
  s.uid = static_cast<uint32_t>(g.uid);
  s.cgroup_path = g.cgroup_path;
  s.mapsize_pages = g.mapsize;
  return s;
}

int CaptureModule::attach_pid() const {
  const uint64_t pid = config()->global.pid;
  return pid != 0 ? static_cast<int>(pid) : -1;
}

Result<void> CaptureModule::start_reading(EventReader::Handler handler, EventReader::Tick tick) {
  return session().start_reader(std::move(handler), std::move(tick),
                               [this](const Error& e) { report_error(e); });
}

void CaptureModule::log_started(std::string_view what) {
  // A part of `all` is one of several: the composite says when the capture has started.
  if (ctx().part) {
    log().info("{}: hooks ready ({})", name(), what);
  } else {
    log().info("{}: capture started ({})", name(), what);
  }
}

void CaptureModule::on_stop() {
  on_detaching();
  session_.stop();
  on_drained();
}

void CaptureModule::on_close() {
  on_detaching();
  session_.close();
  on_release();
}

}  // namespace ecapture::bpf
