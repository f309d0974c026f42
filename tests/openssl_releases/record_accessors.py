#!/usr/bin/env python3
"""Records the accessor functions the layout check reads, as a unit-test fixture.

    record_accessors.py --prefix /path/to/openssl-install [--out tests/fixtures/openssl_releases]

Reads SSL_get_client_random, SSL_get_session and SSL_SESSION_get_master_key (their first 256
bytes, as ecapture does) from the prefix's libssl, and the version string from its libcrypto, and
writes <version>.json there. Standard library only: no ELF module is needed for these lookups.
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
    ap.add_argument("--prefix", required=True, action="append",
                    help="an OpenSSL install prefix (repeatable)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "..", "fixtures", "openssl_releases"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for prefix in args.prefix:
        fixture = record(prefix)
        path = os.path.join(args.out, f"{fixture['version']}-{fixture['machine']}.json")
        with open(path, "w") as f:
            json.dump(fixture, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"{path}: {fixture['version_string']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
