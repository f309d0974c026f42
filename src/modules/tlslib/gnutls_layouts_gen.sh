#!/bin/bash
# Derives the GnuTLS session offsets of gnutls_layouts.cc from GnuTLS's own source: for one
# release commit, compiles an offsetof() printer against that commit's lib/gnutls_int.h
# (x86_64, LP64, gcc) and prints
#   version cs cs_id prf prf_output_size master_secret client_random hs_ckey hs_skey ap_ckey
#   ap_skey ap_expkey
# Needs: a clone of https://github.com/gnutls/gnutls with its branches (3.6.13-3.6.16 and
# 3.7.9-3.7.11 are on gnutls_3_6_x / gnutls_3_7_x; the release commits are listed in
# gnutls_layouts.cc), gcc, the gnulib package (its headers stand in
# for the git submodule), nettle-dev, libgmp-dev, libp11-kit-dev, libtasn1-6-dev, libidn2-dev.
# Check of the method: 3.7.9 gives cs 16, prf 24, master_secret 32, client_random 80, hs_ckey
# 6036 -- the offsets measured in a live Debian 12 libgnutls30 3.7.9 session. The ENABLE_* build
# options do not move any of these offsets (compiled with and without them, 3.6.4-3.8.13).
#
# usage: gnutls_layouts_gen.sh GNUTLS_GIT_DIR VERSION COMMIT
set -euo pipefail
repo=$1 v=$2 rev=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/stub/gnutls"
git -C "$repo" archive "$rev" lib | tar -x -C "$work"
IFS=. read -r ma mi pa _ <<<"$v"
num=$(printf '0x%02x%02x%02x' "$ma" "$mi" "$pa")
sed -e "s/@VERSION@/$v/g" -e "s/@MAJOR_VERSION@/$ma/g" -e "s/@MINOR_VERSION@/$mi/g" \
    -e "s/@PATCH_VERSION@/$pa/g" -e "s/@NUMBER_VERSION@/$num/g" \
    -e 's/@DEFINE_IOVEC_T@/#include <sys\/uio.h>\ntypedef struct iovec giovec_t;/' \
    -e 's/@[A-Z_]*@//g' "$work/lib/includes/gnutls/gnutls.h.in" >"$work/stub/gnutls/gnutls.h"

# config.h: what a Linux build defines, plus the gnulib attribute macros.
cat >"$work/stub/config.h" <<'EOF'
#define _GNU_SOURCE 1
#define HAVE_STDINT_H 1
#define HAVE_STDATOMIC_H 1
#define HAVE_SYS_SOCKET_H 1
#define HAVE_PTHREAD 1
#define USE_POSIX_THREADS 1
#define HAVE_LIBNETTLE 1
#define HAVE_LIBIDN2 1
#define HAVE_ALLOCA 1
#define SIZEOF_UNSIGNED_LONG 8
#define SIZEOF_UNSIGNED_LONG_INT 8
#define SIZEOF_VOID_P 8
#define ENABLE_SRP 1
#define ENABLE_PSK 1
#define ENABLE_ANON 1
#define ENABLE_DHE 1
#define ENABLE_ECDHE 1
#define ENABLE_GOST 1
#define ENABLE_OCSP 1
#define ENABLE_PKCS11 1
#define ENABLE_ALPN 1
#define _GL_INLINE_HEADER_BEGIN
#define _GL_INLINE_HEADER_END
#define _GL_INLINE static inline
#define _GL_EXTERN_INLINE static inline
#define C_CTYPE_INLINE static inline
#define _GL_UNUSED
#define _GL_UNUSED_LABEL
#define _GL_HAS_C_ATTRIBUTE(x) 0
#define _GL_GNUC_PREREQ(a, b) 1
#define _GL_CMP(a, b) (((a) > (b)) - ((a) < (b)))
#define _GL_ATTRIBUTE_PACKED __attribute__((packed))
EOF
for a in CONST PURE MALLOC DEALLOC_FREE NODISCARD MAYBE_UNUSED RETURNS_NONNULL FALLTHROUGH COLD \
         NOTHROW DEPRECATED LEAF ALWAYS_INLINE ARTIFICIAL EXTERNALLY_VISIBLE NOINLINE REPRODUCIBLE \
         UNSEQUENCED; do
  echo "#define _GL_ATTRIBUTE_$a" >>"$work/stub/config.h"
  echo "#define ATTRIBUTE_$a" >>"$work/stub/attribute.h"
done
for a in 'DEALLOC(f, i)' 'FORMAT(x)' 'NONNULL(x)' 'ALLOC_SIZE(x)' 'ERROR(m)' 'WARNING(m)' \
         'SENTINEL(p)'; do
  echo "#define _GL_ATTRIBUTE_$a" >>"$work/stub/config.h"
  echo "#define ATTRIBUTE_$a" >>"$work/stub/attribute.h"
done
printf '#define MAYBE_UNUSED\n#define FALLTHROUGH\n#define UNUSED\n#define NODISCARD\n' \
  >>"$work/stub/attribute.h"

cat >"$work/off.c" <<'EOF'
#include "gnutls_int.h"
#include <stdio.h>
#define O(t, f) printf(" %zu", (size_t)offsetof(t, f))
int main(void)
{
	typedef struct gnutls_session_int S;
	printf("%s", VERSION_STRING);
	O(S, security_parameters.cs);
	O(gnutls_cipher_suite_entry_st, id);
	O(S, security_parameters.prf);
	O(mac_entry_st, output_size);
	O(S, security_parameters.master_secret);
	O(S, security_parameters.client_random);
	O(S, key.proto.tls13.hs_ckey);
	O(S, key.proto.tls13.hs_skey);
	O(S, key.proto.tls13.ap_ckey);
	O(S, key.proto.tls13.ap_skey);
	O(S, key.proto.tls13.ap_expkey);
	printf("\n");
	return 0;
}
EOF
l="$work/lib"
gcc -std=gnu11 -w -DHAVE_CONFIG_H -DVERSION_STRING="\"$v\"" -I"$work/stub" -I"$l/includes" -I"$l" \
    -I"$l/x509" -I"$l/auth" -I"$l/ext" -I"$l/minitasn1" -I"$l/nettle" -I/usr/share/gnulib/lib \
    $(pkg-config --cflags p11-kit-1) -o "$work/off" "$work/off.c"
"$work/off"
