// Go executable analysis: build info, pclntab (Go 1.2 through 1.20+ layouts), RETs via capstone.
#include "elf/go_binary.h"

#include <capstone/capstone.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

namespace ecapture::elf {
namespace {

constexpr std::string_view kBuildInfoMagic = "\xff Go buildinf:";
// Go executables are tens of MiB, the largest known a few hundred.
constexpr uint64_t kMaxGoBinaryBytes = uint64_t{1} << 30;

template <typename T>
bool load(const std::vector<uint8_t>& d, uint64_t off, T* out) {
  if (off > d.size() || d.size() - off < sizeof(T)) return false;
  std::memcpy(out, d.data() + off, sizeof(T));
  return true;
}

bool load_uintptr(const std::vector<uint8_t>& d, uint64_t off, uint8_t ptr_size, uint64_t* out) {
  if (ptr_size == 8) return load(d, off, out);
  uint32_t v = 0;
  if (!load(d, off, &v)) return false;
  *out = v;
  return true;
}

struct Section {
  std::string name;
  uint64_t addr = 0, offset = 0, size = 0;
  uint32_t type = 0;
};

// Section headers of a little-endian ELF64 file (all Go targets we hook).
std::vector<Section> read_sections(const std::vector<uint8_t>& f) {
  std::vector<Section> out;
  Elf64_Ehdr eh;
  if (!load(f, 0, &eh) || eh.e_ident[EI_CLASS] != ELFCLASS64) return out;
  std::vector<Elf64_Shdr> sh(eh.e_shnum);
  for (size_t i = 0; i < sh.size(); ++i) {
    if (!load(f, eh.e_shoff + i * sizeof(Elf64_Shdr), &sh[i])) return {};
  }
  if (eh.e_shstrndx >= sh.size()) return out;
  const Elf64_Shdr& strs = sh[eh.e_shstrndx];
  for (const auto& s : sh) {
    Section sec;
    uint64_t at = strs.sh_offset + s.sh_name;
    if (at < f.size()) {
      const char* p = reinterpret_cast<const char*>(f.data() + at);
      sec.name.assign(p, strnlen(p, f.size() - at));
    }
    sec.addr = s.sh_addr;
    sec.offset = s.sh_offset;
    sec.size = s.sh_type == SHT_NOBITS ? 0 : s.sh_size;
    sec.type = s.sh_type;
    out.push_back(std::move(sec));
  }
  return out;
}

const Section* find_section(const std::vector<Section>& secs, std::string_view name) {
  for (const auto& s : secs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::vector<uint8_t> slice(const std::vector<uint8_t>& f, uint64_t off, uint64_t len) {
  if (off > f.size()) return {};
  len = std::min<uint64_t>(len, f.size() - off);
  return {f.begin() + static_cast<long>(off), f.begin() + static_cast<long>(off + len)};
}

bool plausible_pcln_header(const std::vector<uint8_t>& d, uint64_t off) {
  uint32_t magic = 0;
  if (!load(d, off, &magic)) return false;
  if (magic != 0xfffffff1 && magic != 0xfffffff0 && magic != 0xfffffffa && magic != 0xfffffffb) {
    return false;
  }
  if (off + 8 > d.size() || d[off + 4] != 0 || d[off + 5] != 0) return false;
  uint8_t lc = d[off + 6], ps = d[off + 7];
  return (lc == 1 || lc == 2 || lc == 4) && (ps == 4 || ps == 8);
}

}  // namespace

Result<GoVersion> parse_go_version(std::string_view text) {
  GoVersion v;
  v.text = std::string(text);
  std::string_view s = text;
  if (s.substr(0, 4) != "go1.") return make_error("'{}' is not a Go version", text);
  v.major = 1;
  s.remove_prefix(4);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v.minor);
  if (ec != std::errc()) return make_error("'{}' is not a Go version", text);
  s.remove_prefix(static_cast<size_t>(p - s.data()));
  if (!s.empty() && s.front() == '.') {
    s.remove_prefix(1);
    std::from_chars(s.data(), s.data() + s.size(), v.patch);
  }
  return v;
}

std::optional<std::string> buildinfo_version(
    const std::vector<uint8_t>& d,
    const std::function<std::vector<uint8_t>(uint64_t, size_t)>& read_at) {
  if (d.size() < 32 || std::memcmp(d.data(), kBuildInfoMagic.data(), kBuildInfoMagic.size()) != 0) {
    return std::nullopt;
  }
  const uint8_t ptr_size = d[14], flags = d[15];
  if (flags & 2) {  // Go 1.18+: varint-prefixed strings inline after the 32-byte header
    uint64_t len = 0;
    size_t i = 32;
    for (int shift = 0; i < d.size() && shift < 64; shift += 7) {
      uint8_t b = d[i++];
      len |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    if (len == 0 || len > 256 || i + len > d.size()) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(d.data() + i), len);
  }
  if (flags & 1) return std::nullopt;  // big-endian targets: not hooked here
  // Go < 1.18: a pointer to the version string header {ptr, len} at offset 16.
  uint64_t hdr = 0, ptr = 0, len = 0;
  if (!load_uintptr(d, 16, ptr_size, &hdr)) return std::nullopt;
  auto h = read_at(hdr, 2 * ptr_size);
  if (!load_uintptr(h, 0, ptr_size, &ptr) || !load_uintptr(h, ptr_size, ptr_size, &len) ||
      len == 0 || len > 256) {
    return std::nullopt;
  }
  auto s = read_at(ptr, len);
  if (s.size() != len) return std::nullopt;
  return std::string(s.begin(), s.end());
}

GoArgLocation go_arg_location(uint16_t machine, bool register_abi, int word) {
  static const char* kAmd64[] = {"RAX", "RBX", "RCX", "RDI", "RSI", "R8", "R9", "R10", "R11"};
  static const char* kArm64[] = {"X0", "X1", "X2", "X3", "X4", "X5", "X6", "X7",
                                 "X8", "X9", "X10", "X11", "X12", "X13", "X14", "X15"};
  GoArgLocation loc;
  if (register_abi) {
    if (machine == EM_X86_64 && word >= 0 && word < 9) {
      loc.in_register = true;
      loc.reg = word;
      loc.reg_name = kAmd64[word];
      return loc;
    }
    if (machine == EM_AARCH64 && word >= 0 && word < 16) {
      loc.in_register = true;
      loc.reg = word;
      loc.reg_name = kArm64[word];
      return loc;
    }
  }
  // Stack ABI: the return address (amd64) or saved LR (arm64) sits at SP, arguments follow.
  loc.stack_offset = 8 * (word + 1);
  return loc;
}

bool GoBinary::register_abi() const {
  if (machine() == EM_X86_64) return version_.at_least(1, 17);
  if (machine() == EM_AARCH64) return version_.at_least(1, 18);
  return false;
}

// A function's size comes from the file (pclntab or .symtab): offset + size may overflow.
bool GoBinary::code_in_file(const GoFunction& f) const {
  return f.file_offset <= file_.size() && f.size <= file_.size() - f.file_offset;
}

std::vector<uint8_t> GoBinary::read_vaddr(uint64_t vaddr, size_t len) const {
  auto off = elf_->vaddr_to_offset(vaddr);
  if (!off) return {};
  return slice(file_, *off, len);
}

bool has_go_sections(const ElfFile& elf) {
  for (const char* name :
       {".go.buildinfo", ".gopclntab", ".data.rel.ro.gopclntab", ".note.go.buildid"}) {
    if (elf.has_section(name)) return true;
  }
  return false;
}

Result<std::unique_ptr<GoBinary>> GoBinary::open(const std::string& path) {
  ASSIGN_OR_RETURN(auto elf, ElfFile::open(path));
  std::unique_ptr<GoBinary> b(new GoBinary());
  b->path_ = path;
  b->elf_ = std::move(elf);
  if (!b->elf_->is_native_arch()) {
    return make_error("{} is built for another CPU architecture (e_machine {}); give a Go program "
                      "built for this machine", path, b->elf_->machine());
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_errno_error(errno, "cannot open {}", path);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return make_errno_error(e, "cannot stat {}", path);
  }
  // The whole file is read into memory: a hostile size must not decide how much.
  if (static_cast<uint64_t>(st.st_size) > kMaxGoBinaryBytes) {
    ::close(fd);
    return make_error("{} is {} MiB: larger than any Go program ecapture reads ({} MiB)", path,
                      st.st_size >> 20, kMaxGoBinaryBytes >> 20);
  }
  b->file_.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < b->file_.size()) {
    ssize_t n = ::pread(fd, b->file_.data() + got, b->file_.size() - got, static_cast<off_t>(got));
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      ::close(fd);
      return make_errno_error(e, "cannot read {}", path);
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  if (b->file_.size() < 5 || b->file_[EI_CLASS] != ELFCLASS64) {
    return make_error("{} is a 32-bit ELF file: only 64-bit Go programs can be hooked", path);
  }

  auto secs = read_sections(b->file_);
  // Build info: the .go.buildinfo section, else the magic anywhere (16-byte aligned).
  std::vector<uint8_t> bi;
  if (const Section* s = find_section(secs, ".go.buildinfo"))
    bi = slice(b->file_, s->offset, s->size);
  if (bi.empty()) {
    std::string_view all(reinterpret_cast<const char*>(b->file_.data()), b->file_.size());
    for (size_t at = all.find(kBuildInfoMagic); at != std::string_view::npos;
         at = all.find(kBuildInfoMagic, at + 1)) {
      if (at % 16 == 0) {
        bi = slice(b->file_, at, 4096);
        break;
      }
    }
  }
  auto vtext = buildinfo_version(bi, [&b](uint64_t a, size_t n) { return b->read_vaddr(a, n); });

  // pclntab: the named sections, else a scan for a plausible header.
  std::vector<uint8_t> tab;
  for (const char* name : {".gopclntab", ".data.rel.ro.gopclntab"}) {
    if (const Section* s = find_section(secs, name); s != nullptr && tab.empty()) {
      tab = slice(b->file_, s->offset, s->size);
    }
  }
  if (tab.empty()) {
    for (uint64_t off = 0; off + 64 < b->file_.size(); off += 8) {
      if (plausible_pcln_header(b->file_, off)) {
        tab = slice(b->file_, off, b->file_.size() - off);
        break;
      }
    }
  }
  if (!vtext && tab.empty()) {
    return make_error("{} is not a Go program (no Go build info and no .gopclntab); give the "
                      "path of a Go executable with -e/--elfpath", path);
  }
  if (vtext) {
    auto v = parse_go_version(*vtext);
    if (!v) return make_error("{}: unreadable Go version '{}' in its build info", path, *vtext);
    b->version_ = std::move(v).value();
  }
  uint64_t text_fallback = 0;
  if (auto sym = b->elf_->find_function("runtime.text"); sym) text_fallback = sym->value;
  if (text_fallback == 0) {
    if (const Section* s = find_section(secs, ".text")) text_fallback = s->addr;
  }
  for (const auto& s : secs) {
    if (s.type == SHT_SYMTAB) b->has_symtab_ = true;
  }
  if (!tab.empty()) {
    if (auto r = b->parse_pclntab(tab, text_fallback); !r) {
      if (!b->has_symtab_) return make_error("{}: {}", path, r.error().message);
      b->pcln_funcs_.clear();
    }
  }
  return b;
}

Result<void> GoBinary::parse_pclntab(const std::vector<uint8_t>& t, uint64_t text_fallback) {
  if (!plausible_pcln_header(t, 0)) return make_error("no valid Go pclntab header");
  uint32_t magic = 0;
  load(t, 0, &magic);
  pcln_magic_ = magic;
  const uint8_t ps = t[7];
  auto word = [&](int i) {
    uint64_t v = 0;
    load_uintptr(t, 8 + static_cast<uint64_t>(i) * ps, ps, &v);
    return v;
  };
  const uint64_t nfunc = word(0);
  if (nfunc == 0 || nfunc > 10'000'000)
    return make_error("implausible pclntab ({} functions)", nfunc);
  auto cstr = [&](uint64_t off) -> std::optional<std::string> {
    if (off >= t.size()) return std::nullopt;
    const char* p = reinterpret_cast<const char*>(t.data() + off);
    size_t n = strnlen(p, t.size() - off);
    if (n == t.size() - off) return std::nullopt;
    return std::string(p, n);
  };
  auto bad = [] { return make_error("truncated Go pclntab"); };
  // Each name is stored once in a real table, so the names together fit in it (twice, for the
  // odd shared one). A crafted table can point millions of functions at one long string, or at
  // its overlapping suffixes: reading and copying them would take time and memory that grow
  // with the square of its length.
  uint64_t name_bytes = 0;
  auto count_name = [&](size_t length) {
    name_bytes += length + 1;
    return name_bytes <= 2 * static_cast<uint64_t>(t.size());
  };
  auto overlapping = [] { return make_error("corrupt Go pclntab (function names overlap)"); };

  if (magic == 0xfffffff0 || magic == 0xfffffff1) {  // Go 1.18, 1.20+
    uint64_t text = word(2);
    if (text == 0) text = text_fallback;
    const uint64_t funcnames = word(3), functab = word(7);
    for (uint64_t i = 0; i < nfunc; ++i) {
      uint32_t entryoff = 0, funcoff = 0, next = 0;
      if (!load(t, functab + i * 8, &entryoff) || !load(t, functab + i * 8 + 4, &funcoff) ||
          !load(t, functab + (i + 1) * 8, &next)) {
        return bad();
      }
      int32_t nameoff = 0;
      if (!load(t, functab + funcoff + 4, &nameoff)) return bad();
      auto name = cstr(funcnames + static_cast<uint64_t>(nameoff));
      if (!name) return bad();
      if (!count_name(name->size())) return overlapping();
      pcln_funcs_.try_emplace(std::move(*name), Range{text + entryoff, text + next});
    }
    return {};
  }
  // Go 1.16 (0xfffffffa) and 1.2-1.15 (0xfffffffb): {uintptr entry, uintptr funcoff} pairs.
  uint64_t functab = 0, names = 0;
  if (magic == 0xfffffffa) {
    names = word(2);
    functab = word(6);
  } else {
    functab = 8 + ps;
  }
  for (uint64_t i = 0; i < nfunc; ++i) {
    uint64_t entry = 0, funcoff = 0, next = 0;
    if (!load_uintptr(t, functab + i * 2 * ps, ps, &entry) ||
        !load_uintptr(t, functab + i * 2 * ps + ps, ps, &funcoff) ||
        !load_uintptr(t, functab + (i + 1) * 2 * ps, ps, &next)) {
      return bad();
    }
    int32_t nameoff = 0;
    if (!load(t, functab + funcoff + ps, &nameoff)) return bad();
    auto name = cstr(names + static_cast<uint64_t>(nameoff));
    if (!name) return bad();
    if (!count_name(name->size())) return overlapping();
    pcln_funcs_.try_emplace(std::move(*name), Range{entry, next});
  }
  return {};
}

std::optional<GoFunction> GoBinary::find_in_pclntab(std::string_view name) const {
  auto it = pcln_funcs_.find(std::string(name));
  if (it == pcln_funcs_.end()) return std::nullopt;
  GoFunction f;
  f.name = it->first;
  f.entry = it->second.entry;
  f.size = it->second.end > it->second.entry ? it->second.end - it->second.entry : 0;
  auto off = elf_->vaddr_to_offset(f.entry);
  if (!off) return std::nullopt;
  f.file_offset = *off;
  return f;
}

std::optional<GoFunction> GoBinary::find_function(std::string_view name) const {
  if (has_symtab_) {
    if (auto s = elf_->find_function(name); s && s->defined && s->size > 0) {
      GoFunction f;
      f.name = s->name;
      f.entry = s->value;
      f.size = s->size;
      f.file_offset = s->file_offset;
      f.from_symtab = true;
      return f;
    }
  }
  return find_in_pclntab(name);
}

Result<std::vector<uint64_t>> GoBinary::ret_offsets(const GoFunction& f) const {
  if (f.size == 0 || !code_in_file(f)) {
    return make_error("{}: the code of {} is not in the file", path_, f.name);
  }
  csh cs = 0;
  cs_arch arch = machine() == EM_AARCH64 ? CS_ARCH_ARM64 : CS_ARCH_X86;
  cs_mode mode = machine() == EM_AARCH64 ? CS_MODE_ARM : CS_MODE_64;
  if (machine() != EM_X86_64 && machine() != EM_AARCH64) {
    return make_error("{}: RET discovery supports x86-64 and arm64 only", path_);
  }
  if (cs_open(arch, mode, &cs) != CS_ERR_OK)
    return make_error("capstone: cannot open a disassembler");
  cs_option(cs, CS_OPT_SKIPDATA, CS_OPT_ON);  // padding and data between code: step over it
  std::vector<uint64_t> rets;
  const uint8_t* code = file_.data() + f.file_offset;
  size_t size = f.size;
  uint64_t addr = f.entry;
  cs_insn* insn = cs_malloc(cs);
  const unsigned ret_id = machine() == EM_AARCH64 ? static_cast<unsigned>(ARM64_INS_RET)
                                                   : static_cast<unsigned>(X86_INS_RET);
  while (cs_disasm_iter(cs, &code, &size, &addr, insn)) {
    if (insn->id == ret_id) rets.push_back(f.file_offset + (insn->address - f.entry));
  }
  cs_free(insn, 1);
  cs_close(&cs);
  if (rets.empty()) return make_error("{}: no RET instruction found in {}", path_, f.name);
  return rets;
}

uint64_t GoBinary::body_offset(const GoFunction& f) const {
  if ((machine() != EM_X86_64 && machine() != EM_AARCH64) || f.size == 0 || !code_in_file(f)) {
    return f.file_offset;
  }
  const bool arm = machine() == EM_AARCH64;
  csh cs = 0;
  if (cs_open(arm ? CS_ARCH_ARM64 : CS_ARCH_X86, arm ? CS_MODE_ARM : CS_MODE_64, &cs) !=
      CS_ERR_OK) {
    return f.file_offset;
  }
  cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
  cs_insn* insns = nullptr;
  // The check is the function's first few instructions: a compare of SP with the goroutine's
  // stack guard, then a forward conditional jump into the function's tail.
  const size_t count = cs_disasm(cs, file_.data() + f.file_offset, std::min<uint64_t>(f.size, 64),
                                 f.entry, 6, &insns);
  uint64_t body = f.file_offset;
  for (size_t i = 0; i + 1 < count; ++i) {
    const cs_insn& in = insns[i];
    bool conditional = false;
    int64_t target = 0;
    if (arm) {
      const cs_arm64& a = in.detail->arm64;
      conditional = in.id == ARM64_INS_B && a.cc != ARM64_CC_INVALID && a.cc != ARM64_CC_AL &&
                    a.op_count == 1 && a.operands[0].type == ARM64_OP_IMM;
      if (conditional) target = a.operands[0].imm;
    } else {
      const cs_x86& x = in.detail->x86;
      conditional = (in.id == X86_INS_JBE || in.id == X86_INS_JB || in.id == X86_INS_JAE ||
                     in.id == X86_INS_JA) &&
                    x.op_count == 1 && x.operands[0].type == X86_OP_IMM;
      if (conditional) target = x.operands[0].imm;
    }
    if (!conditional) continue;
    if (target > static_cast<int64_t>(in.address) &&
        static_cast<uint64_t>(target) < f.entry + f.size) {
      body = f.file_offset + (insns[i + 1].address - f.entry);
    }
    break;  // only the first conditional jump can be the check
  }
  if (count > 0) cs_free(insns, count);
  cs_close(&cs);
  return body;
}

}  // namespace ecapture::elf
