"""``hvci-triage symbolize``: text and JSON-lines output, stdin, --base, --return-address, exit codes."""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.commands.symbolize import command
from cli.exitcodes import ExitCode
from tests.conftest import HANG_SECONDS, realworld
from tests.symbols.conftest import SAMPLE_BUILD


def _run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(command, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def api_misuse() -> Path:
    path = SAMPLE_BUILD / "api_misuse.sys"
    if not path.exists():
        pytest.skip("sample drivers not built")
    return path


def test_text_output(api_misuse: Path) -> None:
    code, out, err = _run(str(api_misuse), "0x1005", "1020")
    assert code == ExitCode.OK, err
    lines = out.splitlines()
    assert lines[0] == "0x1005  api_misuse!bad_pool_nonpaged+0x5  [pdb]"
    assert lines[1].endswith("api_misuse.c:26")
    assert lines[2] == "0x1020  api_misuse!good_pool_nonpaged_nx  [pdb]"


def test_json_lines_with_inline_frames() -> None:
    pdb = str(realworld("msvc-pdb", "attach_amd64.pdb"))
    code, out, _ = _run(pdb, "0x1038", "0x1013", "--format", "json")
    assert code == ExitCode.OK
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["address"] == first["rva"] == "0x1038"
    assert (first["function"], first["displacement"], first["line"], first["resolved_by"]) == (
        "printf",
        0x30,
        960,
        "pdb",
    )
    assert first["inlined"][0]["function"] == "_vfprintf_l" and first["inlined"][0]["line"] == 645
    assert set(first) == {
        "address",
        "rva",
        "function",
        "signature",
        "displacement",
        "file",
        "line",
        "inlined",
        "resolved_by",
        "note",
    }
    assert second["function"] == "printf" and second["inlined"] == []


def test_addresses_from_stdin_with_base(api_misuse: Path) -> None:
    stdin = "# from a crash\n0x140001005\n\nfffff803`66351005\n-\n"
    code, out, err = _run(str(api_misuse), "--base", "0x140000000", "--format", "json", stdin=stdin)
    objects = [json.loads(line) for line in out.splitlines()]
    assert objects[0]["rva"] == "0x1005" and objects[0]["address"] == "0x140001005"
    assert objects[0]["function"] == "bad_pool_nonpaged"
    # fffff80366351005 is above the base too, but far past the image: resolved to the module only, noted
    assert objects[1]["resolved_by"] == "module" and "beyond the image size" in objects[1]["note"]
    assert "bad address '-'" in err and code == ExitCode.USAGE


def test_dash_reads_stdin(api_misuse: Path) -> None:
    code, out, _ = _run(str(api_misuse), "-", stdin="1005\n")
    assert code == ExitCode.OK and "bad_pool_nonpaged+0x5" in out


def test_return_address_reports_the_line_of_the_call() -> None:
    """Find a call whose return address starts the next source line (the unoptimised build has many), and
    check that --return-address moves the line back to the call while keeping the displacement."""
    import capstone

    from symbols.pdb import load_pdb
    from symbols.pe import PeImage

    image = SAMPLE_BUILD / "api_misuse_O0.sys"
    if not image.exists():
        pytest.skip("sample drivers not built")
    pe, pdb = PeImage.open(image), load_pdb(image.with_suffix(".pdb"))
    disassembler = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    returns = [
        ins.address + ins.size
        for begin, end in pe.functions
        for ins in disassembler.disasm(pe.read(begin, end - begin), begin)
        if ins.mnemonic == "call"
    ]
    target = next(
        r for r in returns if (a := pdb.lookup(r)) and (b := pdb.lookup(r - 1)) and a.line != b.line
    )
    call_line = pdb.lookup(target - 1).line  # type: ignore[union-attr]
    _, plain, _ = _run(str(image), f"{target:x}", "--format", "json")
    _, corrected, _ = _run(str(image), f"{target:x}", "--format", "json", "--return-address")
    before, after = json.loads(plain), json.loads(corrected)
    assert after["line"] == call_line != before["line"]
    assert after["displacement"] == before["displacement"] and after["function"] == before["function"]


def test_missing_pdb_falls_back_and_exits_incomplete(tmp_path: Path) -> None:
    image = tmp_path / "WinDivert64.sys"
    shutil.copyfile(realworld("drivers", "WinDivert64-1.3.sys"), image)
    code, out, err = _run(
        str(image),
        "0x1010",
        "--symbols",
        f"srv*{tmp_path / 'cache'}*https://msdl.microsoft.com/download/symbols",
    )
    assert code == ExitCode.INCOMPLETE
    assert "[pdata]" in out and "WinDivert64+0x1008+0x8" in out
    assert "WinDivert64.pdb/5EB305B72EAE48AE9B07F718F663A4731/WinDivert64.pdb" in err and "symchk" in err


def test_symbols_option_finds_the_pdb_in_a_store(tmp_path: Path, api_misuse: Path) -> None:
    from symbols.pe import PeImage
    from symbols.store import pdb_key

    image = tmp_path / "api_misuse.sys"
    shutil.copyfile(api_misuse, image)
    codeview = PeImage.open(image).codeview
    assert codeview is not None
    stored = tmp_path / "store" / pdb_key(codeview)
    stored.parent.mkdir(parents=True)
    shutil.copyfile(api_misuse.with_suffix(".pdb"), stored)
    code, out, _ = _run(str(image), "1005", "--symbols", f"srv*{tmp_path / 'store'}")
    assert code == ExitCode.OK and "bad_pool_nonpaged+0x5" in out


@pytest.mark.parametrize("content", [b"", b"plain text", b"MZ" + bytes(10)])
def test_unreadable_input_exits_2_with_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "input.sys"
    path.write_bytes(content)
    code, out, err = _run(str(path), "0x1000")
    assert code == ExitCode.USAGE and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("hvci-triage symbolize: ")


def test_missing_file_and_bad_base(tmp_path: Path, api_misuse: Path) -> None:
    code, _, err = _run(str(tmp_path / "absent.sys"), "1")
    assert code == ExitCode.USAGE and "cannot read" in err
    code, _, err = _run(str(api_misuse), "--base", "xyz", "1")
    assert code == ExitCode.USAGE and "bad --base" in err
    code, _, err = _run(str(api_misuse), "--base", "0x2000", "0x1000")
    assert code == ExitCode.USAGE and "below --base" in err


def test_a_program_waiting_for_each_answer_gets_it_before_sending_the_next() -> None:
    """symbolize as a co-process (as llvm-symbolizer is used): one address in, its answer out, while
    stdin stays open. Batching the output for speed must not hold an answer back."""
    root = Path(__file__).resolve().parents[2]
    driver = root / "samples" / "drivers" / "build" / "api_misuse.sys"
    child = subprocess.Popen(
        [sys.executable, "-m", "cli", "symbolize", "--format", "json", str(driver)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=root,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        for address in ("0x1005", "0x1010"):
            child.stdin.write(f"{address}\n".encode())
            child.stdin.flush()
            ready, _, _ = select.select([child.stdout], [], [], HANG_SECONDS)
            assert ready, "no answer while stdin is still open"
            assert json.loads(child.stdout.readline())["rva"] == address
    finally:
        child.stdin.close()
        child.wait(timeout=HANG_SECONDS)
