#!/usr/bin/env bash
# Builds the HVCI fixture drivers (*.sys + *.pdb) from src/ with clang + lld-link.
#
#   samples/drivers/build.sh [OUTDIR]     (default OUTDIR: samples/drivers/build)
#
# Needs clang, lld-link and llvm-dlltool (Debian 12: `apt-get install clang lld llvm`, all 14.0.6)
# and Python with pefile ($PYTHON, else ../../.venv/bin/python, else python3).  The output is committed, so
# tests do not need this toolchain; tests/test_sample_drivers.py rebuilds into a temporary
# directory when the tools are present and checks that nothing changed.
#
# Reproducibility: the .sys/.pdb bytes depend only on the sources and the toolchain version,
# not on where the checkout lives or on OUTDIR:
#   * /Brepro: the PE TimeDateStamp and the PDB GUID/age are content hashes, not the clock.
#   * compiling from this directory with relative source paths plus -fdebug-compilation-dir=.
#     keeps absolute paths out of the objects' CodeView (file names, LF_BUILDINFO cwd);
#   * linking inside a scratch directory with relative object names plus a fixed
#     /pdbsourcepath stops lld-link from making those paths absolute with its own cwd;
#   * /pdbaltpath:%_PDB% stores only the PDB file name (not OUTDIR) in the RSDS record.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$HERE/build}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

CLANG="${CLANG:-clang}"
LLD_LINK="${LLD_LINK:-lld-link}"
DLLTOOL="${DLLTOOL:-llvm-dlltool}"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$HERE/../../.venv/bin/python" ]]; then
        PYTHON="$HERE/../../.venv/bin/python"
    else
        PYTHON=python3
    fi
fi

# Fixed, fake root that lld-link prefixes to the relative object and source paths in the PDB.
PDB_SOURCE_ROOT='/hvci-triage/samples/drivers'

# Compiler flags (all targets):
#   -g -gcodeview           CodeView debug info, so lld-link writes a real PDB with line tables.
#   -ffreestanding          no hosted C library; kernel code.
#   -funwind-tables         -ffreestanding turns unwind tables off, which would leave the image
#                           without .pdata (function boundaries that the symbol and scan code use).
#   -fno-stack-protector    no /GS cookie: there is no CRT (__security_cookie) to link against.
#   -fno-builtin            keep calls as written (no memset/memcpy synthesised from loops).
#   -fms-extensions         __declspec(code_seg/allocate/dllimport), __forceinline, #pragma pack.
#   -Wall -Wextra -Werror   the fixtures must do exactly what their source says.
#   -Wno-multichar          pool tags are multi-character constants ('HMEM'), as in every driver.
#   -fdebug-compilation-dir=. -fcoverage-compilation-dir=.  see "Reproducibility" above (the
#                           second one because clang copies its cc1 command line, which
#                           otherwise holds the absolute cwd, into LF_BUILDINFO).
CFLAGS_COMMON=(-g -gcodeview -ffreestanding -funwind-tables -fno-stack-protector -fno-builtin
               -fms-extensions -Wall -Wextra -Wno-multichar -Werror
               -fdebug-compilation-dir=. -fcoverage-compilation-dir=. -Iinclude -Isrc/common)

# Linker flags (all fixtures):
#   /driver /subsystem:native /entry:DriverEntry /nodefaultlib   a kernel-mode driver image.
#   /debug /pdbaltpath:%_PDB%   write the PDB; RSDS holds only its file name.
#   /tsaware:no             lld sets TERMINAL_SERVER_AWARE on non-DLL images; a driver never has it.
#   /opt:ref                drop unreferenced COMDATs, as MSVC release builds do.
#   /Brepro /pdbsourcepath  see "Reproducibility" above.
# lld-link 14 has no /release, so the PE checksum (the PE spec: "checked for validation at load
# time" for all drivers) is written afterwards with pefile by write_checksum.
LDFLAGS_COMMON=(/nologo /driver /subsystem:native /entry:DriverEntry /nodefaultlib /debug
                '/pdbaltpath:%_PDB%' /tsaware:no /opt:ref /Brepro "/pdbsourcepath:$PDB_SOURCE_ROOT")

# The INIT section (DriverEntry, __declspec(code_seg("INIT"))) is discardable code.
# /section:NAME,FLAGS *replaces* the flags, so R and E must be given with D.
INIT_ERD='/section:INIT,ERD'

target_triple() {
    case "$1" in
        x64) echo x86_64-pc-windows-msvc ;;
        x86) echo i686-pc-windows-msvc ;;
        arm64) echo aarch64-pc-windows-msvc ;;
    esac
}

# Import libraries for ntoskrnl.exe, one per architecture (lld-link 14 cannot read /def: itself).
make_import_libs() {
    "$DLLTOOL" -m i386:x86-64 -d "$HERE/def/ntoskrnl.def" -l "$WORK/ntoskrnl_x64.lib"
    "$DLLTOOL" -m arm64 -d "$HERE/def/ntoskrnl.def" -l "$WORK/ntoskrnl_arm64.lib"
    # -k: the x86 kernel exports undecorated names; the .def lists the stdcall decorations.
    "$DLLTOOL" -m i386 -k -d "$HERE/def/ntoskrnl_x86.def" -l "$WORK/ntoskrnl_x86.lib"
}

# compile ARCH OPT OBJ SOURCE [extra clang flags...]
compile() {
    local arch="$1" opt="$2" obj="$3" src="$4"
    shift 4
    (cd "$HERE" && "$CLANG" "--target=$(target_triple "$arch")" "$opt" "${CFLAGS_COMMON[@]}" "$@" \
        -c "$src" -o "$WORK/$obj")
}

# write_checksum SYS: the PE checksum lld-link 14 cannot write (/release arrived in lld 15).
write_checksum() {
    "$PYTHON" - "$1" <<'PY'
import sys
import pefile

path = sys.argv[1]
pe = pefile.PE(path, fast_load=True)
offset = pe.OPTIONAL_HEADER.get_field_absolute_offset("CheckSum")
checksum = pe.generate_checksum()
pe.close()
with open(path, "r+b") as f:
    f.seek(offset)
    f.write(checksum.to_bytes(4, "little"))
PY
}

# driver NAME ARCH OPT "SOURCES" [extra lld-link flags...]
# Each source src/X.c becomes NAME-X.obj; src/common/dispatch.c is always linked in.
driver() {
    local name="$1" arch="$2" opt="$3" sources="$4"
    shift 4
    local objs=() src obj machine
    for src in $sources src/common/dispatch.c; do
        obj="$name-$(basename "$src" .c).obj"
        compile "$arch" "$opt" "$obj" "$src"
        objs+=("$obj")
    done
    case "$arch" in
        x64) machine=x64 ;;
        x86) machine=x86 ;;
        arm64) machine=arm64 ;;
    esac
    (cd "$WORK" && "$LLD_LINK" "${LDFLAGS_COMMON[@]}" "/machine:$machine" "$@" \
        "/pdb:$name.pdb" "/out:$name.sys" "${objs[@]}" "ntoskrnl_$arch.lib")
    write_checksum "$WORK/$name.sys"
    cp "$WORK/$name.sys" "$WORK/$name.pdb" "$OUT/"
}

make_import_libs

# ---- fixtures (README.md says what each one must trigger and where) ----
# Most fixtures are clean.c linked differently, so each differs from the baseline in exactly
# the one property it exists for.

# The HVCI-compatible baseline (x64 and ARM64).
driver clean x64 -O2 src/clean.c "$INIT_ERD"
driver arm64_clean arm64 -O2 src/clean.c "$INIT_ERD"

# Call sites: -O2 (tail calls `jmp [IAT]`), -O0 (`call [IAT]`, spills), x86 (stdcall, pushes).
driver api_misuse x64 -O2 src/api_misuse.c "$INIT_ERD"
driver api_misuse_O0 x64 -O0 src/api_misuse.c "$INIT_ERD"
driver x86_api_misuse x86 -O2 src/api_misuse.c "$INIT_ERD" /base:0x10000

# Execute-Write sections: from assembler section flags, from the linker, from a merge.
driver wx_section x64 -O2 src/wx_section.c "$INIT_ERD"
driver x86_wx_section x86 -O2 src/wx_section.c "$INIT_ERD" /base:0x10000
driver arm64_wx arm64 -O2 src/wx_section.c "$INIT_ERD"
driver wx_linker x64 -O2 src/wx_linker.c "$INIT_ERD" /section:.wxlnk,RWE
# /merge alone keeps .text R-X in lld; the explicit /section makes the merged .text RWX.
driver wx_merge x64 -O2 src/clean.c "$INIT_ERD" /merge:.data=.text /section:.text,RWE

# INIT is RWX, as old WDKs (VS 2013) built it: exempt from the W+X rule by name.
driver init_rwx x64 -O2 src/clean.c /section:INIT,ERWD

# Section alignment below a page.  /filealign must equal /align below 0x1000 (PE spec).
driver align200 x64 -O2 src/clean.c "$INIT_ERD" /align:0x200 /filealign:0x200
driver align80 x64 -O2 src/clean.c "$INIT_ERD" /align:0x80 /filealign:0x80

# The IAT lives in .rdata in lld's layout; merging .rdata into .text puts it in R-X code.
driver iat_in_text x64 -O2 src/clean.c "$INIT_ERD" /merge:.rdata=.text

# Relocations: DIR64 entries that straddle a page; HIGHLOW entries in a PE32+.
driver straddle_reloc x64 -O2 src/straddle_reloc.c "$INIT_ERD"
driver highlow_reloc x64 -O2 src/highlow_reloc.c "$INIT_ERD" /largeaddressaware:no /base:0x10000

# DllCharacteristics without NX_COMPAT (lld sets it by default).
driver no_nxcompat x64 -O2 src/clean.c "$INIT_ERD" /nxcompat:no

echo "built $(cd "$OUT" && ls ./*.sys | wc -l) drivers into $OUT"
