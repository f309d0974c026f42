// libFuzzer target: the Go executable analysis (build info, pclntab of every layout, function
// lookup, RET scan and stack-check skip) on hostile files.
// The first byte picks the shape: even → the rest is a whole file; odd → the rest is a .gopclntab
// (the part a mutated Go binary changes), wrapped here in a minimal x86-64 ELF with a .text
// section, so the fuzzer spends its time in the table parser instead of in ELF headers.
#include <elf.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "elf/go_binary.h"
#include "fuzz_file.h"

namespace {

constexpr uint64_t kBase = 0x400000;
constexpr size_t kTextSize = 4096;

template <typename T>
void put(std::vector<uint8_t>& out, size_t at, const T& v) {
  std::memcpy(out.data() + at, &v, sizeof(T));
}

// ELF header, one PT_LOAD over the whole file, sections: null, .text, .gopclntab, .shstrtab.
std::vector<uint8_t> wrap_pclntab(const uint8_t* tab, size_t tab_size) {
  static const char kNames[] = "\0.text\0.gopclntab\0.shstrtab";
  const size_t text_off = 0x1000;
  const size_t tab_off = text_off + kTextSize;
  const size_t names_off = tab_off + tab_size;
  const size_t sh_off = (names_off + sizeof(kNames) + 7) & ~size_t{7};
  std::vector<uint8_t> out(sh_off + 4 * sizeof(Elf64_Shdr));
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_entry = kBase + text_off;
  eh.e_phoff = sizeof(Elf64_Ehdr);
  eh.e_shoff = sh_off;
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = 1;
  eh.e_shentsize = sizeof(Elf64_Shdr);
  eh.e_shnum = 4;
  eh.e_shstrndx = 3;
  put(out, 0, eh);
  Elf64_Phdr ph{};
  ph.p_type = PT_LOAD;
  ph.p_flags = PF_R | PF_X;
  ph.p_vaddr = ph.p_paddr = kBase;
  ph.p_filesz = ph.p_memsz = out.size();
  ph.p_align = 0x1000;
  put(out, eh.e_phoff, ph);
  // .text: RETs and a Go-like stack check, so every lookup that lands in it finds something.
  static const uint8_t kPrologue[] = {0x49, 0x3b, 0x66, 0x10, 0x76, 0x10, 0x55, 0x48,
                                      0x89, 0xe5, 0x5d, 0xc3, 0xe8, 0, 0, 0, 0, 0xeb, 0xed};
  for (size_t at = 0; at + sizeof(kPrologue) <= kTextSize; at += 32) {
    std::memcpy(out.data() + text_off + at, kPrologue, sizeof(kPrologue));
  }
  if (tab_size > 0) std::memcpy(out.data() + tab_off, tab, tab_size);
  std::memcpy(out.data() + names_off, kNames, sizeof(kNames));
  Elf64_Shdr sh[4]{};
  sh[1].sh_name = 1;
  sh[1].sh_type = SHT_PROGBITS;
  sh[1].sh_flags = SHF_ALLOC | SHF_EXECINSTR;
  sh[1].sh_addr = kBase + text_off;
  sh[1].sh_offset = text_off;
  sh[1].sh_size = kTextSize;
  sh[2].sh_name = 7;
  sh[2].sh_type = SHT_PROGBITS;
  sh[2].sh_flags = SHF_ALLOC;
  sh[2].sh_addr = kBase + tab_off;
  sh[2].sh_offset = tab_off;
  sh[2].sh_size = tab_size;
  sh[3].sh_name = 18;
  sh[3].sh_type = SHT_STRTAB;
  sh[3].sh_offset = names_off;
  sh[3].sh_size = sizeof(kNames);
  std::memcpy(out.data() + sh_off, sh, sizeof(sh));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ecapture::fuzz::MemFile file;
  if (size == 0) return 0;
  std::vector<uint8_t> bytes;
  if (data[0] & 1) {
    bytes = wrap_pclntab(data + 1, size - 1);
  } else {
    bytes.assign(data + 1, data + size);
  }
  // The build-info reader on its own, with pointers resolved inside the input.
  (void)ecapture::elf::buildinfo_version(bytes, [&](uint64_t at, size_t len) {
    if (at >= bytes.size()) return std::vector<uint8_t>{};
    len = std::min(len, bytes.size() - at);
    return std::vector<uint8_t>(bytes.begin() + at, bytes.begin() + at + len);
  });
  auto bin = ecapture::elf::GoBinary::open(file.hold(bytes.data(), bytes.size()));
  if (!bin) return 0;
  const auto& b = **bin;
  (void)b.register_abi();
  for (const char* name : {"crypto/tls.(*Conn).Read", "crypto/tls.(*Conn).writeRecordLocked",
                           "main.main", "runtime.text"}) {
    auto f = b.find_function(name);
    if (!f) continue;
    if (f->file_offset > bytes.size()) std::abort();
    if (auto rets = b.ret_offsets(*f)) {
      for (uint64_t r : *rets) {
        if (r >= bytes.size()) std::abort();
      }
    }
    if (b.body_offset(*f) > bytes.size()) std::abort();
  }
  return 0;
}
