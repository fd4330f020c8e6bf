"""PDB lookups: symbolic's lines and inlines, the procedure/public fallback, names, and damaged PDBs."""

from __future__ import annotations

import contextlib
import functools
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbols.demangle import demangle_name
from symbols.msf import MsfError, read_tables
from symbols.pdb import PdbError, PdbFile, bare_name, load_pdb
from symbols.pe import PeImage
from tests.conftest import realworld
from tests.symbols.conftest import SAMPLE_BUILD

ATTACH = ("msvc-pdb", "attach_amd64.pdb")


def test_sample_drivers_are_built() -> None:
    """The oracle test must run on our own fixtures too: fail when the sample build is missing."""
    assert list(SAMPLE_BUILD.glob("*.sys")), f"no sample drivers in {SAMPLE_BUILD} (samples/drivers/build.sh)"


@pytest.fixture(scope="module")
def attach() -> PdbFile:
    return load_pdb(realworld(*ATTACH))


def test_lines_and_inline_frames(attach: PdbFile) -> None:
    symbol = attach.lookup(0x1038)
    assert symbol is not None and symbol.source == "lines"
    assert symbol.function == "printf" and symbol.signature.startswith("printf(")
    assert symbol.function_rva == 0x1008 and symbol.displacement == 0x30
    assert symbol.file is not None and symbol.file.endswith("stdio.h") and symbol.line == 960
    assert [f.function for f in symbol.inlined] == ["_vfprintf_l"]  # innermost first
    assert symbol.inlined[0].line == 645


def test_debug_id_matches_the_image(attach: PdbFile) -> None:
    assert attach.debug_id == PeImage.open(realworld("msvc-pdb", "attach_amd64.dll")).debug_id


def test_code_without_line_info_gets_the_public_name(attach: PdbFile) -> None:
    symbol = attach.lookup(0x5D02)  # an import thunk: jmp [__imp___C_specific_handler]
    assert symbol is not None
    assert (symbol.function, symbol.file, symbol.line, symbol.source) == (
        "__C_specific_handler",
        None,
        None,
        "public",
    )


def test_leading_underscores_are_kept_on_x64(attach: PdbFile) -> None:
    """symbolic strips one leading underscore as if it were x86 C decoration; the procedure record wins."""
    symbol = attach.lookup(0x5FB2)
    assert symbol is not None and symbol.function == "__scrt_is_nonwritable_in_current_image$filt$0"


def test_padding_after_a_function_is_not_attributed(attach: PdbFile) -> None:
    """std::exception::what is 0x1090..0x10a2, then int3 padding up to 0x10b0. A public has no size, so
    llvm-symbolizer names the padding after it; we name nothing rather than guess."""
    last = attach.lookup(0x10A1)
    assert last is not None and last.function == "std::exception::what"
    assert attach.lookup(0x10A2) is None and attach.lookup(0x10AF) is None
    following = attach.lookup(0x10B0)
    assert following is not None and following.function_rva == 0x10B0


def test_x86_pdb_from_the_sample_build() -> None:
    path = SAMPLE_BUILD / "x86_api_misuse.pdb"
    if not path.exists():
        pytest.skip("sample drivers not built")
    pdb = load_pdb(path)
    assert pdb.x86
    symbol = pdb.lookup(0x1000)
    assert symbol is not None and symbol.function == "bad_pool_nonpaged" and symbol.file is not None


def test_load_pdb_is_cached(attach: PdbFile) -> None:
    assert load_pdb(realworld(*ATTACH)) is attach


@pytest.mark.parametrize(
    ("signature", "name"),
    [
        ("printf(char const* const, <NoType>)", "printf"),
        ("Foo::operator()(int) const", "Foo::operator()"),
        ("std::map<int, void (*)(int)>::find(int const&)", "std::map<int, void (*)(int)>::find"),
        ("Outer::inner<&f>(void (*)(char), int) volatile", "Outer::inner<&f>"),
        ("plain_c_name", "plain_c_name"),
        ("(broken", "(broken"),
    ],
)
def test_bare_name(signature: str, name: str) -> None:
    assert bare_name(signature) == name


@pytest.mark.parametrize(
    ("symbol", "name"),
    [
        ("?what@exception@std@@UEBAPEBDXZ", "std::exception::what"),
        ("??1GilHolder@@QEAA@XZ", "GilHolder::~GilHolder"),
        ("??0bad_alloc@std@@QEAA@AEBV01@@Z", "std::bad_alloc::bad_alloc"),
        ("??_Gexception@std@@UEAAPEAXI@Z", "std::exception::`scalar deleting dtor'"),
        ("??2@YAPEAX_K@Z", "operator new"),
        ("?f@?A0x1234abcd@@YAXXZ", "`anonymous namespace'::f"),
        ("__chkstk", "__chkstk"),
        ("??$tmpl@H@@YAXXZ", "??$tmpl@H@@YAXXZ"),  # templates are left decorated rather than guessed
    ],
)
def test_demangle_name(symbol: str, name: str) -> None:
    assert demangle_name(symbol) == name


def test_demangle_x86_c_names() -> None:
    assert demangle_name("_DriverEntry@8", x86=True) == "DriverEntry"
    assert demangle_name("@FastCall@4", x86=True) == "FastCall"
    assert demangle_name("_DriverEntry@8") == "_DriverEntry@8"  # x64 names are never undecorated this way


def test_msf_tables(attach: PdbFile) -> None:
    tables = read_tables(realworld(*ATTACH).read_bytes())
    assert tables.notes == ()
    assert (
        tables.guid == "446150EE-E021-4809-99C4-BCE7828E1528" and tables.age == 1 and tables.machine == 0x8664
    )
    names = {p.name for p in tables.procedures}
    assert {"DecRef", "GilHolder::~GilHolder"} <= names
    assert any(p.name == "?DecRef@@YAXPEAVPyObject@@_N@Z" and p.is_function for p in tables.publics)
    assert tables.sections[0].executable and tables.sections[0].rva == 0x1000


def _copy(tmp_path: Path, data: bytes, name: str = "broken.pdb") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("fraction", [0.02, 0.3, 0.7, 0.95])
def test_truncated_pdb_is_a_diagnostic_not_a_crash(tmp_path: Path, fraction: float) -> None:
    data = realworld(*ATTACH).read_bytes()
    path = _copy(tmp_path, data[: int(len(data) * fraction)])
    try:
        pdb = load_pdb(path)
    except PdbError as error:
        assert "not a readable PDB" in str(error)
        return
    assert pdb.notes  # it loaded in part: what is missing is said
    pdb.lookup(0x1038)


@pytest.mark.parametrize(
    "data", [b"", b"garbage" * 100, b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\x00\x00\x00" + bytes(100)]
)
def test_garbage_pdb_raises_pdb_error(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(PdbError, match="not a readable PDB"):
        load_pdb(_copy(tmp_path, data))


def test_missing_pdb_raises_pdb_error(tmp_path: Path) -> None:
    with pytest.raises(PdbError, match="cannot read"):
        load_pdb(tmp_path / "absent.pdb")


def test_a_pe_is_not_a_pdb(tmp_path: Path) -> None:
    path = tmp_path / "image.pdb"
    shutil.copyfile(realworld("msvc-pdb", "attach_amd64.dll"), path)
    with pytest.raises(PdbError):
        load_pdb(path)


@functools.cache
def _sample_pdb() -> bytes:
    """A PDB of our own (lld-link's MSF layout), committed with the sample drivers: the test never skips."""
    return (SAMPLE_BUILD / "api_misuse.pdb").read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=40))
def test_mutated_pdb_never_raises_anything_but_msf_error(edits: list[tuple[int, int]]) -> None:
    data = bytearray(_sample_pdb())
    for offset, value in edits:
        data[offset % len(data)] = value
    with contextlib.suppress(MsfError):
        read_tables(bytes(data))
