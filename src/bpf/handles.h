// RAII owners for libbpf objects: links and skeletons are released on every path.
#pragma once

#include <bpf/libbpf.h>

#include <vector>

namespace ecapture::bpf {

// An attached program: a libbpf link, or a raw BPF link fd (uprobe_multi links, which libbpf 1.1
// cannot create). Detaches on destruction.
class Link {
 public:
  Link() = default;
  explicit Link(bpf_link* l) : link_(l) {}
  static Link from_fd(int fd) {
    Link l;
    l.fd_ = fd;
    return l;
  }
  ~Link() { reset(); }
  Link(Link&& o) noexcept : link_(o.link_), fd_(o.fd_) {
    o.link_ = nullptr;
    o.fd_ = -1;
  }
  Link& operator=(Link&& o) noexcept;
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;
  void reset();

 private:
  bpf_link* link_ = nullptr;
  int fd_ = -1;
};

// Detaches every link and empties the vector. Each detach waits for an RCU grace period
// (~70-120 ms here); they run concurrently in case the kernel lets them overlap.
void destroy_links(std::vector<Link>& links);

// Skeletons: their destroy functions are `static inline` in the generated header, so each module
// defines a deleter out of line (in its .cc) and holds std::unique_ptr<skel, ThatDeleter>.

}  // namespace ecapture::bpf
