// ecapture entry point.
#include <malloc.h>

#include <cstdio>
#include <exception>

#include "cli/cli.h"

int main(int argc, char** argv) {
  // Payloads of megabytes are allocated by one thread and freed by another: with glibc's sliding
  // mmap threshold they would end up in arenas that never shrink, and the process would keep the
  // peak of every burst. A fixed threshold gives each large buffer back to the system when freed.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  try {
    return ecapture::cli::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ecapture: %s\n", e.what());
    return 1;
  }
}
