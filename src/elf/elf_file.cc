// ElfFile: validates an ELF object with libelf and resolves its symbols to uprobe file offsets.
#include "elf/elf_file.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace ecapture::elf {
namespace {

// .gnu.version entries: the low 15 bits index a version, the top bit marks a non-default
// ("name@VERSION") definition that plain references never bind to.
constexpr uint16_t kVersymHidden = 0x8000;
constexpr uint16_t kVersymIndexMask = 0x7fff;
// Indices 0 (local) and 1 (global, unversioned) carry no version name.
constexpr uint16_t kFirstNamedVersion = 2;

// libelf refuses every call until the library version is negotiated, once per process.
bool libelf_ready() {
  static const bool ready = elf_version(EV_CURRENT) != EV_NONE;
  return ready;
}

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

struct ElfEnd {
  void operator()(Elf* e) const { elf_end(e); }
};
using ElfHandle = std::unique_ptr<Elf, ElfEnd>;

// True when [offset, offset + size) lies inside a file of `file_size` bytes, without overflow.
bool within_file(uint64_t offset, uint64_t size, uint64_t file_size) {
  return offset <= file_size && size <= file_size - offset;
}

std::string libelf_error() {
  const char* message = elf_errmsg(-1);
  return message != nullptr ? message : "unknown libelf error";
}

Error corrupt(const std::string& path, std::string_view what) {
  return make_error("cannot open {}: truncated/corrupt ELF ({})", path, what);
}

// Splits a .symtab name such as "foo@@V2" / "foo@V1" (how ld records versioned definitions
// there) into the plain name, the version and whether it is the default one.
void split_versioned_name(Symbol& sym) {
  const size_t at = sym.name.find('@');
  if (at == std::string::npos) return;
  const bool is_default = at + 1 < sym.name.size() && sym.name[at + 1] == '@';
  sym.version = sym.name.substr(at + (is_default ? 2 : 1));
  sym.default_version = is_default;
  sym.name.resize(at);
}

}  // namespace

struct ElfFile::Impl {
  std::string path;
  // Declared before `elf` so that elf_end runs before the descriptor is closed.
  UniqueFd fd;
  ElfHandle elf;
  const char* image = nullptr;  // the whole file, as mapped or read by libelf
  size_t image_size = 0;
  uint16_t machine = 0;
  uint16_t type = 0;
  std::vector<GElf_Phdr> phdrs;
  std::vector<std::string> needed;

  // Symbol tables of large binaries (node: ~100k entries) are read only when first asked for.
  std::once_flag symbols_once;
  std::vector<Symbol> symbols;
  std::unordered_multimap<std::string_view, size_t> by_name;

  Result<void> validate_layout();
  void read_needed();
  void read_needed_from_segment(const GElf_Phdr& dynamic);
  std::unordered_map<uint16_t, std::string> version_names(Elf_Scn* verdef, Elf_Scn* verneed);
  void read_symbol_table(Elf_Scn* scn, const GElf_Shdr& shdr, bool dynamic, Elf_Data* versyms,
                         const std::unordered_map<uint16_t, std::string>& versions);
  void load_symbols();
  const std::vector<Symbol>& loaded_symbols() {
    std::call_once(symbols_once, [this] { load_symbols(); });
    return symbols;
  }
  std::optional<uint64_t> vaddr_to_offset(uint64_t vaddr) const;
};

Result<void> ElfFile::Impl::validate_layout() {
  GElf_Ehdr ehdr;
  if (gelf_getehdr(elf.get(), &ehdr) == nullptr) return corrupt(path, libelf_error());
  machine = ehdr.e_machine;
  type = ehdr.e_type;

  // libelf quietly reports zero sections when the header table lies past the end of the file,
  // so both header tables are bounds-checked here. A zero e_shnum with a non-zero e_shoff is
  // extended numbering: the real count sits in the first entry.
  if (ehdr.e_shoff != 0 &&
      !within_file(ehdr.e_shoff, uint64_t{std::max<uint16_t>(ehdr.e_shnum, 1)} * ehdr.e_shentsize,
                   image_size)) {
    return corrupt(path, "section header table extends past the end of the file");
  }
  if (ehdr.e_phnum != 0 &&
      !within_file(ehdr.e_phoff, uint64_t{ehdr.e_phnum} * ehdr.e_phentsize, image_size)) {
    return corrupt(path, "program header table extends past the end of the file");
  }

  size_t shnum = 0;
  size_t phnum = 0;
  if (elf_getshdrnum(elf.get(), &shnum) != 0 || elf_getphdrnum(elf.get(), &phnum) != 0) {
    return corrupt(path, libelf_error());
  }
  if (ehdr.e_shnum != 0 && shnum != ehdr.e_shnum) {
    return corrupt(path, "unreadable section header table");
  }
  if (shnum > 0) {
    size_t shstrndx = 0;
    if (elf_getshdrstrndx(elf.get(), &shstrndx) != 0) return corrupt(path, libelf_error());
    if (shstrndx >= shnum) return corrupt(path, "section name table index out of range");
  }

  phdrs.reserve(phnum);
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr phdr;
    if (gelf_getphdr(elf.get(), static_cast<int>(i), &phdr) == nullptr) {
      return corrupt(path, libelf_error());
    }
    if (phdr.p_type == PT_LOAD && !within_file(phdr.p_offset, phdr.p_filesz, image_size)) {
      return corrupt(path, fmt::format("segment {} extends past the end of the file", i));
    }
    phdrs.push_back(phdr);
  }

  for (Elf_Scn* scn = elf_nextscn(elf.get(), nullptr); scn != nullptr;
       scn = elf_nextscn(elf.get(), scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr) return corrupt(path, libelf_error());
    if (shdr.sh_type != SHT_NOBITS && !within_file(shdr.sh_offset, shdr.sh_size, image_size)) {
      return corrupt(path,
                     fmt::format("section {} extends past the end of the file", elf_ndxscn(scn)));
    }
  }
  return ok_result();
}

void ElfFile::Impl::read_needed() {
  for (Elf_Scn* scn = elf_nextscn(elf.get(), nullptr); scn != nullptr;
       scn = elf_nextscn(elf.get(), scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type != SHT_DYNAMIC) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    const size_t entry_size = gelf_fsize(elf.get(), ELF_T_DYN, 1, EV_CURRENT);
    if (data == nullptr || entry_size == 0) return;
    const size_t count = shdr.sh_size / entry_size;
    for (size_t i = 0; i < count; ++i) {
      GElf_Dyn dyn;
      if (gelf_getdyn(data, static_cast<int>(i), &dyn) == nullptr || dyn.d_tag == DT_NULL) break;
      if (dyn.d_tag != DT_NEEDED) continue;
      const char* name = elf_strptr(elf.get(), shdr.sh_link, dyn.d_un.d_val);
      if (name != nullptr) needed.emplace_back(name);
    }
    return;
  }
  // Section headers can be stripped (sstrip); the loader only needs PT_DYNAMIC, and so do we.
  for (const GElf_Phdr& phdr : phdrs) {
    if (phdr.p_type == PT_DYNAMIC) {
      read_needed_from_segment(phdr);
      return;
    }
  }
}

void ElfFile::Impl::read_needed_from_segment(const GElf_Phdr& dynamic) {
  if (!within_file(dynamic.p_offset, dynamic.p_filesz, image_size)) return;
  Elf_Data* data = elf_getdata_rawchunk(elf.get(), static_cast<int64_t>(dynamic.p_offset),
                                        dynamic.p_filesz, ELF_T_DYN);
  const size_t entry_size = gelf_fsize(elf.get(), ELF_T_DYN, 1, EV_CURRENT);
  if (data == nullptr || entry_size == 0) return;
  std::vector<uint64_t> name_offsets;
  uint64_t strtab_vaddr = 0;
  uint64_t strtab_size = 0;
  const size_t count = dynamic.p_filesz / entry_size;
  for (size_t i = 0; i < count; ++i) {
    GElf_Dyn dyn;
    if (gelf_getdyn(data, static_cast<int>(i), &dyn) == nullptr || dyn.d_tag == DT_NULL) break;
    if (dyn.d_tag == DT_NEEDED) name_offsets.push_back(dyn.d_un.d_val);
    if (dyn.d_tag == DT_STRTAB) strtab_vaddr = dyn.d_un.d_ptr;
    if (dyn.d_tag == DT_STRSZ) strtab_size = dyn.d_un.d_val;
  }
  const std::optional<uint64_t> strtab = vaddr_to_offset(strtab_vaddr);
  if (!strtab || !within_file(*strtab, strtab_size, image_size)) return;
  const std::string_view table(image + *strtab, strtab_size);
  for (uint64_t offset : name_offsets) {
    if (offset >= table.size()) continue;
    const size_t end = table.find('\0', offset);
    if (end == std::string_view::npos) continue;
    needed.emplace_back(table.substr(offset, end - offset));
  }
}

// Maps version indices to names: definitions (.gnu.version_d) for the symbols this file
// exports and requirements (.gnu.version_r) for the ones it imports share one index space.
std::unordered_map<uint16_t, std::string> ElfFile::Impl::version_names(Elf_Scn* verdef,
                                                                       Elf_Scn* verneed) {
  std::unordered_map<uint16_t, std::string> names;
  GElf_Shdr shdr;
  if (verdef != nullptr && gelf_getshdr(verdef, &shdr) != nullptr) {
    Elf_Data* data = elf_getdata(verdef, nullptr);
    // Caps the walk so a corrupt vd_next chain cannot loop forever.
    const size_t max_entries = data == nullptr ? 0 : data->d_size / sizeof(Elf32_Verdef) + 1;
    size_t offset = 0;
    for (size_t i = 0; i < max_entries && offset < data->d_size; ++i) {
      GElf_Verdef def;
      if (gelf_getverdef(data, static_cast<int>(offset), &def) == nullptr) break;
      GElf_Verdaux aux;
      if ((def.vd_flags & VER_FLG_BASE) == 0 && def.vd_cnt > 0 &&
          gelf_getverdaux(data, static_cast<int>(offset + def.vd_aux), &aux) != nullptr) {
        const char* name = elf_strptr(elf.get(), shdr.sh_link, aux.vda_name);
        if (name != nullptr) names[def.vd_ndx] = name;
      }
      if (def.vd_next == 0) break;
      offset += def.vd_next;
    }
  }
  if (verneed != nullptr && gelf_getshdr(verneed, &shdr) != nullptr) {
    Elf_Data* data = elf_getdata(verneed, nullptr);
    const size_t max_entries = data == nullptr ? 0 : data->d_size / sizeof(Elf32_Vernaux) + 1;
    size_t offset = 0;
    size_t walked = 0;
    for (size_t i = 0; i < max_entries && offset < data->d_size; ++i) {
      GElf_Verneed need;
      if (gelf_getverneed(data, static_cast<int>(offset), &need) == nullptr) break;
      size_t aux_offset = offset + need.vn_aux;
      for (size_t j = 0; j < need.vn_cnt && walked++ < max_entries; ++j) {
        GElf_Vernaux aux;
        if (gelf_getvernaux(data, static_cast<int>(aux_offset), &aux) == nullptr) break;
        const char* name = elf_strptr(elf.get(), shdr.sh_link, aux.vna_name);
        if (name != nullptr) names[aux.vna_other] = name;
        if (aux.vna_next == 0) break;
        aux_offset += aux.vna_next;
      }
      if (need.vn_next == 0) break;
      offset += need.vn_next;
    }
  }
  return names;
}

void ElfFile::Impl::read_symbol_table(Elf_Scn* scn, const GElf_Shdr& shdr, bool dynamic,
                                      Elf_Data* versyms,
                                      const std::unordered_map<uint16_t, std::string>& versions) {
  Elf_Data* data = elf_getdata(scn, nullptr);
  if (data == nullptr || shdr.sh_entsize == 0) return;
  const size_t count = shdr.sh_size / shdr.sh_entsize;
  if (count > static_cast<size_t>(std::numeric_limits<int>::max())) return;
  for (size_t i = 1; i < count; ++i) {  // entry 0 is the reserved null symbol
    GElf_Sym raw;
    if (gelf_getsym(data, static_cast<int>(i), &raw) == nullptr) break;
    const int type = GELF_ST_TYPE(raw.st_info);
    if (type == STT_SECTION || type == STT_FILE || raw.st_name == 0) continue;
    const char* name = elf_strptr(elf.get(), shdr.sh_link, raw.st_name);
    if (name == nullptr || *name == '\0') continue;

    Symbol sym;
    sym.name = name;
    sym.value = raw.st_value;
    sym.size = raw.st_size;
    sym.is_function = type == STT_FUNC || type == STT_GNU_IFUNC;
    sym.from_dynsym = dynamic;
    sym.defined = raw.st_shndx != SHN_UNDEF;
    sym.default_version = true;
    if (!dynamic) {
      split_versioned_name(sym);
    } else if (versyms != nullptr) {
      GElf_Versym versym;
      if (gelf_getversym(versyms, static_cast<int>(i), &versym) != nullptr) {
        const uint16_t index = versym & kVersymIndexMask;
        if (index >= kFirstNamedVersion) {
          if (auto it = versions.find(index); it != versions.end()) sym.version = it->second;
          // An import names the version it needs; "default" only describes definitions.
          sym.default_version = sym.defined && (versym & kVersymHidden) == 0;
        }
      }
    }
    // TLS values are offsets into the TLS block and absolute symbols are not addresses at all.
    if (sym.defined && type != STT_TLS && raw.st_shndx != SHN_ABS) {
      sym.file_offset = vaddr_to_offset(sym.value).value_or(0);
    }
    symbols.push_back(std::move(sym));
  }
}

void ElfFile::Impl::load_symbols() {
  Elf_Scn* dynsym = nullptr;
  Elf_Scn* symtab = nullptr;
  Elf_Scn* versym = nullptr;
  Elf_Scn* verdef = nullptr;
  Elf_Scn* verneed = nullptr;
  for (Elf_Scn* scn = elf_nextscn(elf.get(), nullptr); scn != nullptr;
       scn = elf_nextscn(elf.get(), scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr) continue;
    switch (shdr.sh_type) {
      case SHT_DYNSYM:
        dynsym = scn;
        break;
      case SHT_SYMTAB:
        symtab = scn;
        break;
      case SHT_GNU_versym:
        versym = scn;
        break;
      case SHT_GNU_verdef:
        verdef = scn;
        break;
      case SHT_GNU_verneed:
        verneed = scn;
        break;
      default:
        break;
    }
  }
  GElf_Shdr shdr;
  if (dynsym != nullptr && gelf_getshdr(dynsym, &shdr) != nullptr) {
    Elf_Data* versyms = versym != nullptr ? elf_getdata(versym, nullptr) : nullptr;
    read_symbol_table(dynsym, shdr, /*dynamic=*/true, versyms, version_names(verdef, verneed));
  }
  if (symtab != nullptr && gelf_getshdr(symtab, &shdr) != nullptr) {
    read_symbol_table(symtab, shdr, /*dynamic=*/false, nullptr, {});
  }
  // Built only now: the views point into strings that must no longer move.
  by_name.reserve(symbols.size());
  for (size_t i = 0; i < symbols.size(); ++i) by_name.emplace(symbols[i].name, i);
}

std::optional<uint64_t> ElfFile::Impl::vaddr_to_offset(uint64_t vaddr) const {
  for (const GElf_Phdr& phdr : phdrs) {
    if (phdr.p_type != PT_LOAD) continue;
    if (vaddr >= phdr.p_vaddr && vaddr - phdr.p_vaddr < phdr.p_filesz) {
      return vaddr - phdr.p_vaddr + phdr.p_offset;
    }
  }
  return std::nullopt;
}

Result<std::unique_ptr<ElfFile>> ElfFile::open(const std::string& path) {
  if (!libelf_ready()) return make_error("cannot open {}: libelf initialisation failed", path);

  // stat first so that a FIFO or device is refused before open() could block on it.
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return make_error("cannot open {}: no such file", path);
    return make_errno_error(errno, "cannot open {}", path);
  }
  if (!S_ISREG(st.st_mode)) return make_error("cannot open {}: not a regular file", path);

  auto impl = std::make_unique<Impl>();
  impl->path = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return make_error("cannot open {}: no such file", path);
    return make_errno_error(errno, "cannot open {}", path);
  }
  impl->fd = UniqueFd(fd);
  if (::fstat(impl->fd.get(), &st) != 0) return make_errno_error(errno, "cannot stat {}", path);
  if (!S_ISREG(st.st_mode)) return make_error("cannot open {}: not a regular file", path);
  // Any process can map any file under a library's name; a huge one (a sparse 4 GiB
  // "libssl.so.3") would cost scans of gigabytes of nothing.
  RETURN_IF_ERROR(check_elf_size(path, static_cast<uint64_t>(st.st_size)));

  char magic[SELFMAG];
  const ssize_t got = ::pread(impl->fd.get(), magic, sizeof(magic), 0);
  if (got < 0) return make_errno_error(errno, "cannot read {}", path);
  if (got != SELFMAG || std::memcmp(magic, ELFMAG, SELFMAG) != 0) {
    return make_error("cannot open {}: not an ELF file", path);
  }

  impl->elf.reset(elf_begin(impl->fd.get(), ELF_C_READ_MMAP, nullptr));
  if (!impl->elf) return corrupt(path, libelf_error());
  if (elf_kind(impl->elf.get()) != ELF_K_ELF) return corrupt(path, "unrecognised ELF header");
  impl->image = elf_rawfile(impl->elf.get(), &impl->image_size);
  if (impl->image == nullptr) return corrupt(path, libelf_error());
  RETURN_IF_ERROR(impl->validate_layout());
  impl->read_needed();
  return std::unique_ptr<ElfFile>(new ElfFile(std::move(impl)));
}

ElfFile::ElfFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ElfFile::~ElfFile() = default;

const std::string& ElfFile::path() const { return impl_->path; }
uint16_t ElfFile::machine() const { return impl_->machine; }
bool ElfFile::is_shared_object() const { return impl_->type == ET_DYN; }
bool ElfFile::is_native_arch() const { return impl_->machine == native_machine(); }

bool ElfFile::may_export(std::string_view name) const {
  Elf* elf = impl_->elf.get();
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type != SHT_DYNSYM) continue;
    GElf_Shdr strtab;
    Elf_Scn* str = elf_getscn(elf, shdr.sh_link);
    if (str == nullptr || gelf_getshdr(str, &strtab) == nullptr ||
        !within_file(strtab.sh_offset, strtab.sh_size, impl_->image_size)) {
      return true;  // unusual layout: let find_function decide
    }
    // Names are NUL-separated, the table starts with a NUL: look for "\0name\0".
    const std::string_view table(impl_->image + strtab.sh_offset, strtab.sh_size);
    std::string needle(1, '\0');
    needle.append(name);
    needle.push_back('\0');
    return table.find(needle) != std::string_view::npos;
  }
  return true;  // no .dynsym: only .symtab can tell
}

std::optional<Symbol> ElfFile::find_function(std::string_view name) const {
  std::string_view base = name;
  std::string_view version;
  bool want_default = false;
  if (const size_t at = name.find('@'); at != std::string_view::npos) {
    base = name.substr(0, at);
    want_default = name.substr(at, 2) == "@@";
    version = name.substr(at + (want_default ? 2 : 1));
    if (version.empty()) return std::nullopt;
  }

  const std::vector<Symbol>& symbols = impl_->loaded_symbols();
  // Lower is better: default versions first, then .dynsym before .symtab, then table order.
  std::optional<std::pair<int, size_t>> best;
  auto [it, end] = impl_->by_name.equal_range(base);
  for (; it != end; ++it) {
    const Symbol& sym = symbols[it->second];
    if (!sym.defined || !sym.is_function) continue;
    if (!version.empty() && (sym.version != version || (want_default && !sym.default_version))) {
      continue;
    }
    const std::pair<int, size_t> rank{(sym.default_version ? 0 : 2) + (sym.from_dynsym ? 0 : 1),
                                      it->second};
    if (!best || rank < *best) best = rank;
  }
  if (!best) return std::nullopt;
  return symbols[best->second];
}

std::optional<uint64_t> ElfFile::vaddr_to_offset(uint64_t vaddr) const {
  return impl_->vaddr_to_offset(vaddr);
}

std::vector<std::string> ElfFile::needed() const { return impl_->needed; }

static std::optional<GElf_Shdr> find_section(Elf* elf, std::string_view name) {
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf, &shstrndx) != 0) return std::nullopt;
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr) continue;
    const char* section_name = elf_strptr(elf, shstrndx, shdr.sh_name);
    if (section_name != nullptr && name == section_name) return shdr;
  }
  return std::nullopt;
}

std::vector<uint8_t> ElfFile::section_data(std::string_view name) const {
  const std::optional<GElf_Shdr> shdr = find_section(impl_->elf.get(), name);
  if (!shdr || shdr->sh_type == SHT_NOBITS) return {};
  // Bounds were checked against the file size in validate_layout().
  const auto* begin = reinterpret_cast<const uint8_t*>(impl_->image + shdr->sh_offset);
  return std::vector<uint8_t>(begin, begin + shdr->sh_size);
}

bool ElfFile::has_section(std::string_view name) const {
  return find_section(impl_->elf.get(), name).has_value();
}

const std::vector<Symbol>& ElfFile::symbols() const { return impl_->loaded_symbols(); }

Result<void> check_elf_size(const std::string& path, uint64_t size) {
  if (size <= kMaxElfFileBytes) return ok_result();
  return make_error("cannot open {}: {} MiB is larger than any library or program ecapture "
                    "hooks ({} MiB)", path, size >> 20, kMaxElfFileBytes >> 20);
}

uint16_t native_machine() {
#if defined(__x86_64__)
  return EM_X86_64;
#elif defined(__aarch64__)
  return EM_AARCH64;
#else
#error "ecapture supports x86_64 and aarch64 only"
#endif
}

}  // namespace ecapture::elf
