// NSS key log file writer: appends (never truncates), creates the file 0600, writes each line
// with one write(2) as it comes, and writes each (label, client random) once.
#pragma once

#include <mutex>
#include <set>
#include <span>
#include <string>

#include "core/result.h"

namespace ecapture {

// One NSS key log line: LABEL <client random hex> <secret hex>.
struct KeylogLine {
  std::string label;
  std::string client_random;  // hex
  std::string secret;         // hex
  std::string to_string() const { return label + " " + client_random + " " + secret; }
};

// Lower-case hex of `bytes`, as key log lines spell randoms and secrets.
std::string to_hex(std::span<const uint8_t> bytes);

class KeylogWriter {
 public:
  static Result<std::unique_ptr<KeylogWriter>> open(const std::string& path);
  ~KeylogWriter();
  KeylogWriter(const KeylogWriter&) = delete;
  KeylogWriter& operator=(const KeylogWriter&) = delete;

  // Returns true when the line was new and written. A failed write (a full disk) leaves the file
  // ending with its last whole line and is returned once; later lines are dropped (false).
  Result<bool> write(const std::string& label, const std::string& client_random_hex,
                     const std::string& secret_hex);
  Result<bool> write(const KeylogLine& l) { return write(l.label, l.client_random, l.secret); }
  const std::string& path() const { return path_; }
  // Removes the file if this writer created it and nothing was written: for captures that fail
  // to start, so that an error leaves no empty file behind.
  void discard_if_unused();
  size_t lines_written() const { return written_; }

 private:
  KeylogWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
  std::mutex mu_;
  std::set<std::string> seen_;
  size_t written_ = 0;
  bool created_ = false;
  bool failed_ = false;
};

}  // namespace ecapture
