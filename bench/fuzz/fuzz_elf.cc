// libFuzzer target: the ELF reader (libelf validation, symbol tables with GNU versions, DT_NEEDED
// from sections or PT_DYNAMIC, section bytes, address translation) on hostile files.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "elf/elf_file.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ecapture::fuzz::MemFile file;
  auto elf = ecapture::elf::ElfFile::open(file.hold(data, size));
  if (!elf) return 0;
  const auto& f = **elf;
  (void)f.is_native_arch();
  size_t names = 0;
  for (const std::string& n : f.needed()) names += n.size();
  for (const auto& sym : f.symbols()) {
    names += sym.name.size() + sym.version.size();
    // A symbol's offset must lie in the file whenever the ELF reader claims to know it.
    if (sym.file_offset != 0 && sym.file_offset > size) std::abort();
  }
  for (const char* fn :
       {"SSL_write", "SSL_read@@OPENSSL_3.0.0", "SSL_read@OPENSSL_1_1_0", "main"}) {
    if (auto s = f.find_function(fn); s && s->file_offset > size) std::abort();
  }
  for (const char* sec : {".rodata", ".text", ".go.buildinfo", ".gopclntab", ".dynstr"}) {
    if (f.section_data(sec).size() > size) std::abort();
  }
  if (auto off = f.vaddr_to_offset(0x1000); off && *off > size) std::abort();
  (void)names;
  return 0;
}
