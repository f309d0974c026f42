// Link ownership and concurrent teardown.
#include "bpf/handles.h"

#include <unistd.h>

#include <thread>

namespace ecapture::bpf {

Link& Link::operator=(Link&& o) noexcept {
  if (this != &o) {
    reset();
    link_ = o.link_;
    fd_ = o.fd_;
    o.link_ = nullptr;
    o.fd_ = -1;
  }
  return *this;
}

void Link::reset() {
  if (link_ != nullptr) bpf_link__destroy(link_);
  if (fd_ >= 0) ::close(fd_);
  link_ = nullptr;
  fd_ = -1;
}

void destroy_links(std::vector<Link>& links) {
  if (links.size() <= 1) {
    links.clear();
    return;
  }
  std::vector<std::thread> threads;
  threads.reserve(links.size());
  for (auto& link : links) {
    threads.emplace_back([l = std::move(link)]() mutable { l.reset(); });
  }
  for (auto& t : threads) t.join();
  links.clear();
}

}  // namespace ecapture::bpf
