// The base of every capture module: the Module lifecycle with one CaptureSession, so that a
// module writes only what is its own (target, probes, records) and never the stop or close.
#pragma once

#include <string>
#include <string_view>

#include "bpf/capture_session.h"
#include "core/module.h"

namespace ecapture::bpf {

class CaptureModule : public Module {
 public:
  explicit CaptureModule(std::string name) : Module(std::move(name)) {}

 protected:
  // The session, bound to this module's counters and logger.
  CaptureSession& session();
  // The settings of the module's skeleton from its config (filters, buffer size, BTF).
  SkeletonSettings skeleton_settings() const;
  // The pid uprobes are attached for (-1: every process).
  int attach_pid() const;
  // Starts reading the session's events; a poll failure ends the run as a module error.
  Result<void> start_reading(EventReader::Handler handler, EventReader::Tick tick = {});
  // "<name>: capture started (<what>)": the line tests and users wait for.
  void log_started(std::string_view what);

  // Before stop detaches (and before close releases): stop what attaches probes on another
  // thread (a target watcher's subscription).
  virtual void on_detaching() {}
  // After stop has detached and drained: flush what the module holds (assemblers, files).
  virtual void on_drained() {}
  // After the session is released: free the module's own state.
  virtual void on_release() {}

 private:
  void on_stop() final;
  void on_close() final;

  CaptureSession session_;
};

}  // namespace ecapture::bpf
