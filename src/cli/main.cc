// ecapture entry point.
#include <cstdio>
#include <exception>

#include "cli/cli.h"

int main(int argc, char** argv) {
  try {
    return ecapture::cli::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ecapture: %s\n", e.what());
    return 1;
  }
}
