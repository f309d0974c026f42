// Finds the executables of running processes (for modules that hook a server binary).
#pragma once

#include <cstdint>
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

// One executable file in use, by identity (device and inode, the same file through any path or
// mount namespace), with the processes running it.
struct ExeFile {
  uint64_t dev = 0;
  uint64_t ino = 0;
  std::string seen_path;  // as the (first) process sees it
  std::string path;       // reaches the file from here: its path (through /proc/<pid>/root for
                          // another mount namespace), else /proc/<pid>/exe (a deleted file)
  std::vector<int> pids;  // ascending
};

// The distinct executables of the running processes, in order of their lowest pid. Processes
// whose executable cannot be read (kernel threads, gone meanwhile) are left out.
std::vector<ExeFile> running_executables();

}  // namespace ecapture::elf
