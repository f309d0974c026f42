// empty_probe: attaches an empty uprobe and an empty uretprobe to functions of a library
// (default: SSL_write in the system libssl.so.3), prints "attached", waits for SIGINT/SIGTERM,
// detaches and exits 0.
//
// Usage: empty_probe [library [function[,function...]]]
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "empty_probe.skel.h"

namespace {

constexpr const char *kDefaultLib = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
constexpr const char *kDefaultFunc = "SSL_write";

struct SkelDeleter {
  void operator()(empty_probe_bpf *s) const { empty_probe_bpf::destroy(s); }
};

int quiet_libbpf(enum libbpf_print_level level, const char *fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  return vfprintf(stderr, fmt, args);
}

bpf_link *attach(bpf_program *prog, const char *lib, const char *func, bool retprobe) {
  LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = retprobe, .func_name = func);
  bpf_link *link = bpf_program__attach_uprobe_opts(prog, -1, lib, 0, &opts);
  if (!link) {
    fprintf(stderr, "empty_probe: attaching %s to %s:%s failed: %s\n",
            retprobe ? "uretprobe" : "uprobe", lib, func, strerror(errno));
  }
  return link;
}

}  // namespace

int main(int argc, char **argv) {
  const char *lib = argc > 1 ? argv[1] : kDefaultLib;
  const char *func = argc > 2 ? argv[2] : kDefaultFunc;
  libbpf_set_print(quiet_libbpf);

  // Block the signals before anything else so that sigwait() below receives them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  std::unique_ptr<empty_probe_bpf, SkelDeleter> skel(empty_probe_bpf::open_and_load());
  if (!skel) {
    fprintf(stderr, "empty_probe: loading the BPF object failed: %s\n", strerror(errno));
    return 1;
  }
  std::vector<bpf_link *> links;
  std::string names(func);
  for (size_t start = 0; start <= names.size();) {
    size_t end = names.find(',', start);
    if (end == std::string::npos) end = names.size();
    std::string one = names.substr(start, end - start);
    start = end + 1;
    if (one.empty()) continue;
    for (bool ret : {false, true}) {
      bpf_link *l = attach(ret ? skel->progs.empty_exit : skel->progs.empty_enter, lib,
                           one.c_str(), ret);
      if (!l) return 1;
      links.push_back(l);
    }
  }

  printf("attached %s:%s\n", lib, func);
  fflush(stdout);

  int sig = 0;
  sigwait(&set, &sig);
  for (bpf_link *l : links) bpf_link__destroy(l);
  return 0;  // the skeleton deleter frees the rest
}
