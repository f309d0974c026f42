// Running-process discovery through /proc.
#include "elf/process_discovery.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <utility>

#include "elf/lib_discovery.h"

namespace ecapture::elf {

std::string process_exe(int pid) {
  std::string link = "/proc/" + std::to_string(pid) + "/exe";
  char buf[4096];
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string target(buf, static_cast<size_t>(n));
  struct stat st {};
  if (target.ends_with(" (deleted)") || ::stat(target.c_str(), &st) != 0) return link;
  return target;
}

std::vector<RunningExe> find_running(const std::vector<std::string>& comms,
                                     const std::string& proc_root) {
  std::vector<RunningExe> out;
  DIR* d = ::opendir(proc_root.c_str());
  if (d == nullptr) return out;
  while (dirent* ent = ::readdir(d)) {
    const std::string name = ent->d_name;
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream f(proc_root + "/" + name + "/comm");
    std::string comm;
    if (!std::getline(f, comm)) continue;
    if (std::find(comms.begin(), comms.end(), comm) == comms.end()) continue;
    RunningExe r;
    r.pid = std::stoi(name);
    r.path = proc_root == "/proc" ? process_exe(r.pid) : "";
    if (proc_root == "/proc" && r.path.empty()) continue;
    out.push_back(std::move(r));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const RunningExe& a, const RunningExe& b) {
    return a.pid < b.pid;
  });
  return out;
}

std::vector<ExeFile> running_executables() {
  std::vector<int> pids;
  if (DIR* d = ::opendir("/proc")) {
    while (dirent* ent = ::readdir(d)) {
      const std::string name = ent->d_name;
      if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) {
        pids.push_back(std::stoi(name));
      }
    }
    ::closedir(d);
  }
  std::sort(pids.begin(), pids.end());
  std::vector<ExeFile> out;
  std::map<std::pair<uint64_t, uint64_t>, size_t> index;
  for (int pid : pids) {
    const std::string link = "/proc/" + std::to_string(pid) + "/exe";
    struct stat st {};
    if (::stat(link.c_str(), &st) != 0) continue;
    const std::pair<uint64_t, uint64_t> id{st.st_dev, st.st_ino};
    if (auto it = index.find(id); it != index.end()) {
      out[it->second].pids.push_back(pid);
      continue;
    }
    char seen[4096];
    const ssize_t n = ::readlink(link.c_str(), seen, sizeof(seen) - 1);
    ExeFile f{id.first, id.second, n > 0 ? std::string(seen, static_cast<size_t>(n)) : link,
              process_executable(pid), {pid}};
    // The path must still name that file (a replaced binary has a new inode under the old name).
    struct stat here {};
    if (f.path.empty() || ::stat(f.path.c_str(), &here) != 0 || here.st_dev != st.st_dev ||
        here.st_ino != st.st_ino) {
      f.path = link;
    }
    index.emplace(id, out.size());
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace ecapture::elf
