// Runtime logging: stderr (coloured on a tty) plus an optional file from --logaddr.
#pragma once

#include <memory>

#include <spdlog/logger.h>

#include "core/config.h"
#include "core/result.h"

namespace ecapture {

// Builds the "ecapture" logger. A --logaddr file is appended to, never truncated.
Result<std::shared_ptr<spdlog::logger>> make_logger(const GlobalConfig& cfg);

}  // namespace ecapture
