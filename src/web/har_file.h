// --har FILE: every HTTP exchange of the run as one HAR 1.2 file. Entries go to a temporary file
// next to FILE as they complete; commit() closes the document and renames it into place, so FILE
// is either absent or a whole, valid HAR — also after SIGINT/SIGTERM.
#pragma once

#include <cstdio>
#include <string>

#include "core/result.h"
#include "web/exchange.h"

namespace ecapture::web {

class HarFile {
 public:
  // Refuses an empty path and an existing FILE (like -w: a user's file is never overwritten);
  // creates the temporary file (mode 0600) so that an unwritable directory fails at start-up.
  static Result<std::unique_ptr<HarFile>> create(const std::string& path);
  ~HarFile();  // discard() unless committed
  HarFile(const HarFile&) = delete;
  HarFile& operator=(const HarFile&) = delete;

  // Appends one exchange (rows without a request are skipped).
  void add(const Row& row);
  // Writes the closing, flushes, syncs and renames the file into place. Idempotent.
  Result<void> commit();
  // Removes the temporary file (the run never started). Idempotent.
  void discard();
  uint64_t entries() const { return entries_; }
  const std::string& path() const { return path_; }

 private:
  HarFile() = default;
  std::string path_, temp_;
  FILE* f_ = nullptr;
  uint64_t entries_ = 0;
  bool failed_ = false;
};

}  // namespace ecapture::web
