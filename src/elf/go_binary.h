// Go executables: the toolchain version from the build info, function lookup through .symtab or,
// when the binary is stripped, through the Go line table (.gopclntab), RET instructions of a
// function (capstone), and the calling convention of its arguments.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "elf/elf_file.h"

namespace ecapture::elf {

struct GoVersion {
  int major = 0, minor = 0, patch = 0;
  std::string text;  // "go1.19.8" as the build info has it
  bool at_least(int maj, int min) const {
    return major > maj || (major == maj && minor >= min);
  }
};

// "go1.19.8", "go1.21rc2", "go1.22.0 X:boringcrypto" → numbers; error for anything else.
Result<GoVersion> parse_go_version(std::string_view text);

// The version string of the build info blob at `data` (the .go.buildinfo section or the bytes
// following its magic). `read_at` resolves a virtual address to bytes (Go < 1.18 stores pointers).
std::optional<std::string> buildinfo_version(
    const std::vector<uint8_t>& data,
    const std::function<std::vector<uint8_t>(uint64_t vaddr, size_t len)>& read_at);

struct GoFunction {
  std::string name;
  uint64_t entry = 0;        // virtual address
  uint64_t size = 0;         // bytes of code
  uint64_t file_offset = 0;  // where the entry lives in the file (uprobe offset)
  bool from_symtab = false;  // else from pclntab
};

// Where an integer-sized argument word lives at function entry (or a result at RET).
struct GoArgLocation {
  bool in_register = false;
  int reg = -1;              // index into the register list of the architecture
  std::string reg_name;      // "RBX", "X1", ...
  int64_t stack_offset = 0;  // from SP at entry/RET when !in_register
};

// `word` counts pointer-sized words of the arguments, receiver first (a string is 2 words, a
// slice 3). Results of Read-like functions start after the arguments: `result_word` of a
// function with `arg_words` argument words is at arg_words + result_word.
GoArgLocation go_arg_location(uint16_t machine, bool register_abi, int word);

// A quick look at the section headers only (no file read): whether `elf` was built by Go. For
// scanning many executables; GoBinary::open also finds Go programs whose sections were removed.
bool has_go_sections(const ElfFile& elf);

class GoBinary {
 public:
  // Validates `path`: an ELF file of this machine's architecture, built by Go (build info or
  // pclntab present). Errors are one sentence naming the path.
  static Result<std::unique_ptr<GoBinary>> open(const std::string& path);

  const std::string& path() const { return path_; }
  const GoVersion& version() const { return version_; }
  uint16_t machine() const { return elf_->machine(); }
  bool is_pie() const { return elf_->is_shared_object(); }
  bool has_symtab() const { return has_symtab_; }
  uint32_t pclntab_magic() const { return pcln_magic_; }
  size_t pclntab_functions() const { return pcln_funcs_.size(); }
  // Register ABI (ABIInternal): amd64 since Go 1.17, arm64 since 1.18.
  bool register_abi() const;

  // Looks `name` ("crypto/tls.(*Conn).Read") up in .symtab, else in pclntab.
  std::optional<GoFunction> find_function(std::string_view name) const;
  // Same, through pclntab only (tests compare both).
  std::optional<GoFunction> find_in_pclntab(std::string_view name) const;
  // File offsets of every RET instruction of `f` (x86-64 and arm64).
  Result<std::vector<uint64_t>> ret_offsets(const GoFunction& f) const;
  // File offset of the first instruction after `f`'s stack-growth check (the conditional jump to
  // its runtime.morestack call), or of its entry when it has none (NOSPLIT). When the stack must
  // grow, morestack runs the function again from its entry, so an entry probe can fire twice
  // for one call; here it fires once, with the arguments still in their registers.
  uint64_t body_offset(const GoFunction& f) const;

 private:
  GoBinary() = default;
  Result<void> parse_pclntab(const std::vector<uint8_t>& tab, uint64_t text_fallback);
  std::vector<uint8_t> read_vaddr(uint64_t vaddr, size_t len) const;
  bool code_in_file(const GoFunction& f) const;

  std::string path_;
  std::unique_ptr<ElfFile> elf_;
  std::vector<uint8_t> file_;
  GoVersion version_;
  bool has_symtab_ = false;
  uint32_t pcln_magic_ = 0;
  struct Range {
    uint64_t entry, end;
  };
  std::unordered_map<std::string, Range> pcln_funcs_;
};

}  // namespace ecapture::elf
