"""Our PDB answers against llvm-symbolizer's, at the first, middle and last byte of every function.

Binaries: every sample driver built into ``samples/drivers/build`` (clang + lld-link PDBs: x64, x86, arm64)
and the real MSVC-built DLLs in ``../shared/realworld/msvc-pdb`` (publics, C13 lines, inlinees, CRT code
without line info). Functions are the ``.pdata`` ranges united with the PDB's procedure records (lld
leaves leaf functions without ``.pdata``; x86 has none at all).

We compare the *outermost* frame: function name, file, line. That is what a triage report shows as
"function + file:line". Inline frames are not compared: llvm-symbolizer 14 and symbolic decode MSVC inline
sites differently (each reports inlinees the other omits), and neither is a reference for that.

Where the two legitimately disagree, the difference is normalised or explained, and each explanation is
checked against the PDB itself through ``llvm-pdbutil`` (not against our own reader), so it cannot hide a
real error:

* **Name formatting.** llvm demangles the public symbol (``foo(struct HINSTANCE__*, bool)``,
  ``class std::basic_string<char, ...>``), symbolic rebuilds it from type records
  (``std::basic_string<char,...>``): both are compared without the parameter list, without the
  ``class/struct/enum/union`` keywords and without spaces; MSVC's procedure records spell
  ```scalar deleting destructor'`` where llvm's demangler prints ```scalar deleting dtor'``.
* **Several line records at one address.** A function's opening line and its first statement often share
  the first instruction's address (``25 00000000  26 00000000``). llvm reports the first record, we
  (symbolic) the last, which is the one that covers the instruction. Accepted only when the line table
  really has both records at that exact address, ours last.
* **Aliases of one body** (``/OPT:ICF`` folding, ``__chkstk``/``_alloca_probe``): several names at one
  address; llvm picks a public, we the procedure. Accepted only when the PDB has both names at that address.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from symbols.pdb import PdbFile, bare_name, load_pdb
from symbols.pe import PeImage
from tests.conftest import realworld, realworld_files
from tests.symbols.conftest import SAMPLE_BUILD

LLVM_SYMBOLIZER = shutil.which("llvm-symbolizer") or ""
LLVM_PDBUTIL = shutil.which("llvm-pdbutil") or ""
pytestmark = pytest.mark.skipif(
    not LLVM_SYMBOLIZER or not LLVM_PDBUTIL,
    reason="llvm-symbolizer / llvm-pdbutil not installed (apt-get install llvm); CI installs them",
)


def _binaries() -> list[Path]:
    samples = sorted(p for p in SAMPLE_BUILD.glob("*.sys") if p.with_suffix(".pdb").exists())
    msvc = [p for p in realworld_files("msvc-pdb", "*.dll") if p.with_suffix(".pdb").exists()]
    return samples + msvc


def _normal(name: str | None) -> str | None:
    if not name:
        return None
    name = bare_name(name)
    name = re.sub(r"\b(?:class|struct|enum|union) ", "", name)
    name = name.replace("deleting destructor'", "deleting dtor'")
    return name.replace(" ", "")


@dataclass(frozen=True)
class PdbFacts:
    """What llvm-pdbutil says: line numbers recorded at each RVA (in order) and names at each RVA."""

    lines_at: dict[int, list[int]]
    names_at: dict[int, set[str]]


_SEGMENT_RANGE = re.compile(r"^\s+([0-9A-F]{4}):[0-9A-F]{8}-[0-9A-F]{8}, line/addr entries")
_LINE_ENTRY = re.compile(r"(\d+) ([0-9A-F]{8})")
_LINE_ENTRIES = re.compile(r"^\s*(?:\d+ [0-9A-F]{8}\s*!?\s*)+$")
_RECORD = re.compile(
    r"^\s*\d+ \| (S_PUB32|S_GPROC32|S_LPROC32|S_GPROC32_ID|S_LPROC32_ID) \[size = \d+\] `(.*)`$"
)
_ADDR = re.compile(r"addr = ([0-9A-F]{4}):(\d+)")


@cache
def _pdb_facts(pdb: Path, image: Path) -> PdbFacts:
    sections = [s.virtual_address for s in PeImage.open(image).sections]

    def rva(segment: int, offset: int) -> int | None:
        return sections[segment - 1] + offset if 1 <= segment <= len(sections) else None

    lines_at: dict[int, list[int]] = defaultdict(list)
    dump = subprocess.run([LLVM_PDBUTIL, "dump", "-l", str(pdb)], capture_output=True, text=True, check=True)
    segment = 0
    for text in dump.stdout.splitlines():
        found = _SEGMENT_RANGE.match(text)
        if found:
            segment = int(found.group(1), 16)
            continue
        if segment and _LINE_ENTRIES.match(text):
            for line, offset in _LINE_ENTRY.findall(text):
                where = rva(segment, int(offset, 16))
                if where is not None:
                    lines_at[where].append(int(line))
    names_at: dict[int, set[str]] = defaultdict(set)
    dump = subprocess.run(
        [LLVM_PDBUTIL, "dump", "-publics", "-symbols", str(pdb)], capture_output=True, text=True, check=True
    )
    pending: str | None = None
    for text in dump.stdout.splitlines():
        record = _RECORD.match(text)
        if record:
            pending = record.group(2)
            continue
        address = _ADDR.search(text)
        if pending is not None and address:
            where = rva(int(address.group(1), 16), int(address.group(2)))
            if where is not None:
                names_at[where].add(pending)
            pending = None
    return PdbFacts(dict(lines_at), dict(names_at))


@cache
def _oracle(image: Path) -> tuple[tuple[int, ...], tuple[dict[str, object], ...]]:
    """Sample addresses of ``image`` and llvm-symbolizer's outermost frame for each (one process)."""
    pe = PeImage.open(image)
    pdb = load_pdb(image.with_suffix(".pdb"))
    ranges = set(pe.functions) | {(p.rva, p.rva + p.size) for p in pdb._procedures if p.size > 0}
    addresses = tuple(sorted({a for begin, end in ranges for a in (begin, (begin + end) // 2, end - 1)}))
    run = subprocess.run(
        [LLVM_SYMBOLIZER, f"--obj={image}", "--relative-address", "--output-style=JSON"],
        input="\n".join(f"{a:#x}" for a in addresses),
        capture_output=True,
        text=True,
        check=True,
    )
    frames = tuple(json.loads(line)["Symbol"][-1] for line in run.stdout.splitlines())
    assert len(frames) == len(addresses)
    return addresses, frames


def _explained_line(ours: int | None, theirs: int | None, start: int, facts: PdbFacts) -> bool:
    """Several line records at the very address looked up: llvm takes the first, we the last."""
    recorded = facts.lines_at.get(start, [])
    return len(recorded) > 1 and recorded[0] == theirs and recorded[-1] == ours


def _explained_name(ours: str, theirs: str, function_rva: int, facts: PdbFacts) -> bool:
    """Both names belong to one body (ICF folding or an assembler alias)."""
    names = {_normal(n) for n in facts.names_at.get(function_rva, set())}
    return _normal(ours) in names and _normal(theirs) in names


@pytest.mark.parametrize("image", _binaries(), ids=lambda p: p.name)
def test_outermost_frame_agrees_with_llvm_symbolizer(image: Path) -> None:
    addresses, frames = _oracle(image)
    pdb: PdbFile = load_pdb(image.with_suffix(".pdb"))
    facts = _pdb_facts(image.with_suffix(".pdb"), image)
    disagreements = []
    explained = 0
    for address, frame in zip(addresses, frames, strict=True):
        ours = pdb.lookup(address)
        theirs_name = _normal(str(frame["FunctionName"]))
        theirs_file = str(frame["FileName"]) or None
        theirs_line = int(str(frame["Line"])) or None
        if ours is None:
            if theirs_name is not None:
                disagreements.append(f"{address:#x}: we found nothing, llvm says {frame}")
            continue
        name_ok = _normal(ours.function) == theirs_name or _explained_name(
            ours.function, str(frame["FunctionName"]), ours.function_rva, facts
        )
        line_ok = ours.line == theirs_line or _explained_line(ours.line, theirs_line, address, facts)
        file_ok = ours.file == theirs_file
        if name_ok and line_ok and file_ok:
            explained += (_normal(ours.function) != theirs_name) or (ours.line != theirs_line)
            continue
        disagreements.append(
            f"{address:#x}: ours {ours.function!r} {ours.file}:{ours.line} ({ours.source}), "
            f"llvm {frame['FunctionName']!r} {theirs_file}:{theirs_line}"
        )
    assert not disagreements, "\n".join(disagreements[:20])
    # the explanations are exceptions, not the rule: most answers must agree outright
    assert explained <= len(addresses) // 5, f"{explained} of {len(addresses)} needed an explanation"


def test_functions_without_line_info_get_their_public_name() -> None:
    """symbolic answers [] for code without line info; llvm names it from the publics, and so must we."""
    image = realworld("msvc-pdb", "attach_amd64.dll")
    pdb = load_pdb(image.with_suffix(".pdb"))
    pe = PeImage.open(image)
    answers = {begin: pdb.lookup(begin) for begin, _ in pe.functions}
    without_lines = [
        begin for begin, answer in answers.items() if answer is not None and answer.source != "lines"
    ]
    assert without_lines, "expected CRT/thunk code without line info in an MSVC binary"
    addresses, frames = _oracle(image)
    by_address = dict(zip(addresses, frames, strict=True))
    for begin in without_lines:
        ours = pdb.lookup(begin)
        assert ours is not None and ours.file is None and ours.line is None
        assert _normal(ours.function) == _normal(str(by_address[begin]["FunctionName"]))
