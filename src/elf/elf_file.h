// ELF inspection with libelf: symbols (.dynsym and .symtab, with GNU symbol versions) resolved to
// the file offsets that uprobes attach to, plus the few headers other modules need.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ecapture::elf {

struct Symbol {
  std::string name;         // plain name, e.g. "SSL_write"
  std::string version;      // GNU version, e.g. "OPENSSL_3.0.0"; empty when unversioned
  bool default_version = false;  // true for "name@@VERSION" (or unversioned)
  uint64_t value = 0;       // st_value (virtual address)
  uint64_t size = 0;        // st_size
  uint64_t file_offset = 0; // where the code lives in the file (for uprobes)
  bool is_function = false;
  bool from_dynsym = false;
  bool defined = true;       // false for imports (st_shndx == SHN_UNDEF)
};

class ElfFile {
 public:
  // Opens and validates `path`: must exist, be a regular readable file and an ELF object.
  // Errors name the path and what is wrong ("not an ELF file", "no such file", ...).
  static Result<std::unique_ptr<ElfFile>> open(const std::string& path);
  ~ElfFile();
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  const std::string& path() const;
  uint16_t machine() const;           // e_machine (EM_X86_64, EM_AARCH64, ...)
  bool is_shared_object() const;      // ET_DYN (shared library or PIE)
  bool is_native_arch() const;        // e_machine matches the running CPU

  // Finds a function symbol. `name` may be plain ("SSL_write") or versioned
  // ("SSL_write@@OPENSSL_3.0.0" / "SSL_write@OPENSSL_3.0.0"). A plain name prefers the default
  // version. Looks in .dynsym first, then .symtab. Returns nullopt when absent.
  std::optional<Symbol> find_function(std::string_view name) const;

  // A cheap pre-check before find_function: false when no dynamic symbol (defined or imported)
  // is named `name`, read from the .dynsym string table alone, without loading any symbol table.
  bool may_export(std::string_view name) const;

  // Converts a virtual address to a file offset using the PT_LOAD program headers.
  std::optional<uint64_t> vaddr_to_offset(uint64_t vaddr) const;

  // DT_NEEDED entries (e.g. "libcrypto.so.3").
  std::vector<std::string> needed() const;

  // Raw bytes of a section by name (e.g. ".rodata"); empty when absent.
  std::vector<uint8_t> section_data(std::string_view name) const;
  // Whether the section headers name `name` (reads no section data).
  bool has_section(std::string_view name) const;

  // All symbols (for tests and diagnostics).
  const std::vector<Symbol>& symbols() const;

 private:
  struct Impl;
  explicit ElfFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The largest executables (browsers, statically linked servers) are a few hundred MiB. Any
// process can map any file under a library's name; a bigger one (a sparse 4 GiB "libssl.so.3")
// is refused instead of scanned.
inline constexpr uint64_t kMaxElfFileBytes = uint64_t{2} << 30;
// Error naming `path` when `size` is over kMaxElfFileBytes.
Result<void> check_elf_size(const std::string& path, uint64_t size);

// Returns the e_machine of the running process (EM_X86_64 on x86_64, ...).
uint16_t native_machine();

}  // namespace ecapture::elf
