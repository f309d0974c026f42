#!/usr/bin/env python3
"""Records the accessor functions the layout check reads, as a unit-test fixture.

    record_accessors.py --prefix /path/to/openssl-install [--out tests/fixtures/openssl_releases]
    record_accessors.py --objects VERSION ssl/ssl_lib.o ssl/ssl_sess.o [--out ...]

Reads SSL_get_client_random, SSL_get_session and SSL_SESSION_get_master_key (their first 256
bytes, as ecapture does) from the prefix's libssl, and the version string from its libcrypto, and
writes <version>-<machine>.json there. With --objects the functions come from the object files of
a build's libssl (the code is the library's; addresses are section offsets, and calls are not yet
relocated). Standard library only: no ELF module is needed for these lookups.
"""
import argparse
import glob
import json
import os
import re
import struct
import sys

FUNCTIONS = ["SSL_get_client_random", "SSL_get_session", "SSL_SESSION_get_master_key"]
MAX_BYTES = 256  # code_offsets.cc kMaxCodeBytes
MACHINES = {62: "x86_64", 183: "aarch64"}


def dynamic_symbols(data):
    """{name: (value, size)} of the defined functions in .dynsym of an ELF64 little-endian file,
    and e_machine."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not an ELF64 little-endian file")
    machine = struct.unpack_from("<H", data, 18)[0]
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
                for i in range(shnum)]
    out = {}
    for name, typ, flags, addr, off, size, link, info, align, entsize in sections:
        if typ != 11:  # SHT_DYNSYM
            continue
        strtab = sections[link]
        stroff = strtab[4]
        for i in range(size // entsize):
            st_name, st_info, st_other, st_shndx, st_value, st_size = struct.unpack_from(
                "<IBBHQQ", data, off + i * entsize)
            if st_shndx == 0 or (st_info & 0xF) != 2:  # undefined or not STT_FUNC
                continue
            end = data.index(b"\0", stroff + st_name)
            out[data[stroff + st_name:end].decode()] = (st_value, st_size)
    return out, machine


def object_functions(data):
    """{name: (code bytes, section offset)} of the functions defined in an ELF64 relocatable."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
                for i in range(shnum)]
    out = {}
    for name, typ, flags, addr, off, size, link, info, align, entsize in sections:
        if typ != 2:  # SHT_SYMTAB
            continue
        stroff = sections[link][4]
        for i in range(size // entsize):
            st_name, st_info, st_other, st_shndx, st_value, st_size = struct.unpack_from(
                "<IBBHQQ", data, off + i * entsize)
            if st_shndx == 0 or st_shndx >= len(sections) or (st_info & 0xF) != 2:
                continue
            end = data.index(b"\0", stroff + st_name)
            sec_off = sections[st_shndx][4]
            code = data[sec_off + st_value:sec_off + st_value + min(st_size, MAX_BYTES)]
            out[data[stroff + st_name:end].decode()] = (code, st_value)
    return out


def record_objects(version, paths):
    functions, machine = {}, None
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        machine = struct.unpack_from("<H", data, 18)[0]
        for name, (code, value) in object_functions(data).items():
            if name in FUNCTIONS:
                functions[name] = {"address": f"{value:#x}", "code": code.hex()}
    if not functions:  # 1.0.2 has SSL_get_session only (the other two came with 1.1.0)
        raise ValueError(f"none of {', '.join(FUNCTIONS)} in {paths}")
    return {"version": version, "version_string": f"OpenSSL {version}",
            "machine": MACHINES.get(machine, str(machine)),
            "library": "objects: " + ", ".join(os.path.basename(p) for p in paths),
            "functions": functions}


def file_offset(data, vaddr):
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align = \
            struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and p_vaddr <= vaddr < p_vaddr + p_filesz:
            return vaddr - p_vaddr + p_offset
    raise ValueError(f"address {vaddr:#x} is in no PT_LOAD segment")


def library(prefix, stem):
    for d in ("lib", "lib64", "lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu"):
        found = sorted(glob.glob(os.path.join(prefix, d, stem + ".so.*")))
        if found:
            return found[0]
    raise FileNotFoundError(f"no {stem}.so.* under {prefix}/lib*")


def version_string(path):
    with open(path, "rb") as f:
        data = f.read()
    m = re.search(rb"OpenSSL (\d\.\d+\.\d+[a-z]*(?:-(?:alpha|beta|pre|dev)\d*)?)[^\0]*", data)
    if not m:
        raise ValueError(f"no OpenSSL version string in {path}")
    return m.group(1).decode(), m.group(0).decode()


def record(prefix):
    ssl = library(prefix, "libssl")
    with open(ssl, "rb") as f:
        data = f.read()
    symbols, machine = dynamic_symbols(data)
    functions = {}
    for name in FUNCTIONS:
        if name not in symbols:
            continue  # 1.0.2 has SSL_get_session only
        value, size = symbols[name]
        off = file_offset(data, value)
        functions[name] = {"address": f"{value:#x}",
                           "code": data[off:off + min(size, MAX_BYTES)].hex()}
    crypto = ssl if b"OpenSSL 1.0" in data else library(prefix, "libcrypto")
    version, raw = version_string(crypto)
    return {"version": version, "version_string": raw,
            "machine": MACHINES.get(machine, str(machine)),
            "library": os.path.basename(ssl), "functions": functions}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", action="append", default=[],
                    help="an OpenSSL install prefix (repeatable)")
    ap.add_argument("--objects", nargs="+", metavar=("VERSION", "OBJECT"),
                    help="a version and the object files of its libssl")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "..", "fixtures", "openssl_releases"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    fixtures = [record(prefix) for prefix in args.prefix]
    if args.objects:
        fixtures.append(record_objects(args.objects[0], args.objects[1:]))
    for fixture in fixtures:
        path = os.path.join(args.out, f"{fixture['version']}-{fixture['machine']}.json")
        with open(path, "w") as f:
            json.dump(fixture, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"{path}: {fixture['version_string']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
