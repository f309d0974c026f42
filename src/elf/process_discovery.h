// Finds the executables of running processes (for modules that hook a server binary).
#pragma once

#include <string>
#include <vector>

namespace ecapture::elf {

struct RunningExe {
  int pid = 0;
  std::string path;  // the executable as seen from our mount namespace (or /proc/<pid>/exe)
};

// The executable of `pid`: the target of /proc/<pid>/exe when that path exists here, else
// "/proc/<pid>/exe" itself (a process in another mount namespace). Empty when the process is gone.
std::string process_exe(int pid);

// Running processes whose comm is one of `comms`, oldest (lowest pid) first. `proc_root` is a
// parameter for tests.
std::vector<RunningExe> find_running(const std::vector<std::string>& comms,
                                     const std::string& proc_root = "/proc");

}  // namespace ecapture::elf
