"""Images that carry DWARF in their own sections (mingw, Wine, clang with /debug:dwarf) resolve to function
and source line without a PDB, and agree with llvm-symbolizer.

The image is built here from the sample driver sources (clang + lld-link, which CI installs), so the test
needs no committed binary and no PDB: exactly the situation of a mingw-built driver.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from symbols.pe import PeImage
from symbols.resolve import ImageSymbols

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = ROOT / "samples" / "drivers"
TOOLS = {name: shutil.which(name) or "" for name in ("clang", "lld-link", "llvm-dlltool", "llvm-symbolizer")}
pytestmark = [
    pytest.mark.toolchain,
    pytest.mark.skipif(
        not all(TOOLS.values()),
        reason="needs clang, lld-link, llvm-dlltool, llvm-symbolizer (CI installs them)",
    ),
]


@pytest.fixture(scope="module")
def dwarf_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("dwarf")
    subprocess.run(
        [TOOLS["llvm-dlltool"], "-m", "i386:x86-64", "-d", str(DRIVERS / "def" / "ntoskrnl.def"), "-l",
         str(work / "nt.lib")],
        check=True,
    )
    objects = []
    for source in ("src/clean.c", "src/common/dispatch.c"):
        obj = work / (Path(source).stem + ".obj")
        subprocess.run(
            [TOOLS["clang"], "--target=x86_64-pc-windows-msvc", "-O2", "-g", "-gdwarf", "-ffreestanding",
             "-funwind-tables", "-fno-stack-protector", "-fno-builtin", "-fms-extensions", "-Wno-multichar",
             "-fdebug-compilation-dir=.", "-Iinclude", "-Isrc/common", "-c", source, "-o", str(obj)],
            cwd=DRIVERS,
            check=True,
        )
        objects.append(str(obj))
    image = work / "dwarf_clean.sys"
    subprocess.run(
        [TOOLS["lld-link"], "/nologo", "/driver", "/subsystem:native", "/entry:DriverEntry", "/nodefaultlib",
         "/debug:dwarf", "/section:INIT,ERD", "/machine:x64", f"/out:{image}", *objects,
         str(work / "nt.lib")],
        check=True,
    )
    return image


def test_no_pdb_and_no_codeview_but_dwarf_answers(dwarf_image: Path) -> None:
    image = PeImage.open(dwarf_image)
    assert image.codeview is None
    assert "DriverEntry" in image.coff_functions.values()
    symbols = ImageSymbols.from_path(dwarf_image)
    assert symbols.pdb is not None and symbols.pdb.kind == "dwarf"
    assert not [note for note in symbols.notes if "PDB" in note]  # the image needs none: no "missing PDB"


def test_every_function_agrees_with_llvm_symbolizer(dwarf_image: Path) -> None:
    image = PeImage.open(dwarf_image)
    rvas = sorted({rva for begin, end in image.functions for rva in (begin, (begin + end) // 2, end - 1)})
    symbols = ImageSymbols.from_path(dwarf_image)
    answers = subprocess.run(
        [TOOLS["llvm-symbolizer"], f"--obj={dwarf_image}", "--relative-address", "--output-style=JSON"],
        input="\n".join(f"{rva:#x}" for rva in rvas),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    compared = 0
    for rva, answer in zip(rvas, answers, strict=True):
        frames = json.loads(answer)["Symbol"]
        outer = frames[-1]
        if not outer.get("Line"):
            continue
        ours = symbols.resolve_rva(rva)
        assert ours.resolved_by == "dwarf", (hex(rva), ours)
        assert (ours.function, ours.line) == (outer["FunctionName"], outer["Line"]), (hex(rva), ours, outer)
        assert ours.file is not None and Path(ours.file).name == Path(outer["FileName"]).name
        compared += 1
    assert compared >= len(image.functions) * 2  # most sampled bytes have a line
