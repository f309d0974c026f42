// RAII owners for libbpf objects: links and skeletons are released on every path.
#pragma once

#include <bpf/libbpf.h>

#include <memory>

namespace ecapture::bpf {

struct LinkDeleter {
  void operator()(bpf_link* l) const {
    if (l != nullptr) bpf_link__destroy(l);
  }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

// Skeletons: their destroy functions are `static inline` in the generated header, so each module
// defines a deleter out of line (in its .cc) and holds std::unique_ptr<skel, ThatDeleter>.

}  // namespace ecapture::bpf
