"""A small driver compiled in a test from C text (clang + lld-link + llvm-dlltool, which CI installs)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

F = TypeVar("F", bound=Callable[..., Any])
DRIVERS = Path(__file__).resolve().parents[2] / "samples" / "drivers"
TOOLS = {name: shutil.which(name) or "" for name in ("clang", "lld-link", "llvm-dlltool")}
#: target triple, llvm-dlltool machine and lld-link machine per PE machine
MACHINES = {
    "x64": ("x86_64-pc-windows-msvc", "i386:x86-64", "x64"),
    "arm64": ("aarch64-pc-windows-msvc", "arm64", "arm64"),
}
_SKIP = pytest.mark.skipif(
    not all(TOOLS.values()), reason="needs clang, lld-link, llvm-dlltool (CI installs them)"
)


def needs_toolchain(test: F) -> F:
    """Mark a test that builds a driver: it skips, with the reason, where the toolchain is missing."""
    marked: F = pytest.mark.toolchain(_SKIP(test))
    return marked


def build_driver(tmp: Path, source: str, machine: str, opt: str, imports: tuple[str, ...] = ()) -> Path:
    """``source`` (with ``ntoskrnl_min.h``) built into ``tmp`` as a driver for ``machine`` at ``opt``;
    ``imports`` are ntoskrnl.exe exports it needs beyond those of the sample drivers' .def."""
    triple, dlltool_machine, link_machine = MACHINES[machine]
    c_file, lib, obj, def_file = tmp / "driver.c", tmp / "nt.lib", tmp / "driver.obj", tmp / "ntoskrnl.def"
    c_file.write_text(source, encoding="utf-8")
    exports = (DRIVERS / "def" / "ntoskrnl.def").read_text(encoding="utf-8").rstrip("\n")
    def_file.write_text("\n".join([exports, *imports]) + "\n", encoding="utf-8")
    ntoskrnl = str(def_file)
    subprocess.run([TOOLS["llvm-dlltool"], "-m", dlltool_machine, "-d", ntoskrnl, "-l", str(lib)], check=True)
    flags = ["-ffreestanding", "-funwind-tables", "-fno-stack-protector", "-fno-builtin", "-fms-extensions"]
    include = f"-I{DRIVERS / 'include'}"
    subprocess.run(
        [TOOLS["clang"], f"--target={triple}", opt, *flags, include, "-c", str(c_file), "-o", str(obj)],
        check=True,
    )
    image = tmp / f"driver{opt}.sys"
    link = [
        "/nologo",
        "/driver",
        "/subsystem:native",
        "/entry:DriverEntry",
        "/nodefaultlib",
        f"/machine:{link_machine}",
    ]
    subprocess.run([TOOLS["lld-link"], *link, f"/out:{image}", str(obj), str(lib)], check=True)
    return image
