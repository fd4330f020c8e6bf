"""``hvci-triage symbolize IMAGE_OR_PDB ADDRESS...``: address -> function + displacement, file:line, inlines.

The file is a driver image (``.sys``/``.dll``/``.exe``; its PDB is found by its CodeView name next to it,
then through ``--symbols``) or a PDB on its own. Addresses are RVAs (offsets from the image base) unless
``--base`` is given, in which case they are virtual addresses and the base is subtracted. Numbers are hex,
as the debugger prints them (``0x`` optional, WinDbg's backtick allowed: ``fffff803`66351234``). With no
address, or ``-``, addresses are read from stdin, one per line (blank lines and ``#`` comments skipped).

``--return-address`` treats each address as a return address (looks up ``address - 1`` so that the call's
line is reported, displacement still relative to the address given), as for stack frames and 0xC4's caller.

``--format json`` prints **JSON lines**: one object per address, in input order, each with ``address``
(hex string, the value as given), ``rva`` (hex string: ``address - base``), ``function``, ``signature``,
``displacement`` (int or null), ``file``, ``line``, ``inlined`` (innermost first: objects with
``function``, ``file``, ``line``), ``resolved_by`` (``pdb``/``dwarf``/``exports``/``pdata``/``module``) and
``note``. Problems with the files (missing or mismatched PDB, damaged image) go to stderr once.

Exit codes: 0 every address resolved through the PDB; 3 some could only be resolved from the image or not
at all (no PDB, or the PDB does not cover them); 2 the file cannot be read or an address is malformed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn

import click

from cli.exitcodes import ExitCode
from cli.output import emit, printable, warn
from symbols.environment import symbol_path_from_environment
from symbols.modules import parse_address
from symbols.resolve import ImageSymbols, Resolution
from symbols.store import SymbolStore

PREFIX = "hvci-triage symbolize"


def _addresses(given: tuple[str, ...]) -> Iterator[tuple[str, int, bool]]:
    """(text as given, line number or argument position, whether to answer now) for each address, from
    argv or stdin. From stdin, "now" is the last line that had arrived: answers then go out in one write
    per piece of input (fast for a file of addresses), yet a program that waits for each answer before
    it sends the next address gets it at once."""
    if given and given != ("-",):
        yield from ((text, index, index == len(given)) for index, text in enumerate(given, start=1))
        return
    stream = sys.stdin.buffer
    read = getattr(stream, "read1", stream.read)
    carry = b""
    number = 0
    while True:
        piece = read(1 << 16)
        lines = (carry + piece).split(b"\n")
        carry = lines.pop() if piece else b""
        for index, raw in enumerate(lines, start=1):
            number += 1
            text = raw.decode("utf-8", "replace").split("#", 1)[0].strip()
            if text:
                yield text, number, index == len(lines)
        if not piece:
            return


def _frame_dicts(result: Resolution) -> list[dict[str, Any]]:
    return [{"function": f.function, "file": f.file, "line": f.line} for f in result.inline_frames]


def _json_line(result: Resolution, base: int) -> str:
    return json.dumps(
        {
            "address": f"{result.address + base:#x}",
            "rva": f"{result.address:#x}",
            "function": result.function,
            "signature": result.signature,
            "displacement": result.displacement,
            "file": result.file,
            "line": result.line,
            "inlined": _frame_dicts(result),
            "resolved_by": result.resolved_by,
            "note": result.note,
        }
    )


def _text_lines(result: Resolution, module: str, base: int) -> Iterable[str]:
    where = result.symbol if result.function else f"{module}+{result.address:#x}"
    yield f"{result.address + base:#x}  {printable(where)}  [{result.resolved_by}]"
    if result.file:
        yield f"    {printable(result.file)}:{result.line if result.line is not None else '?'}"
    for frame in result.inline_frames:
        source = (
            f" at {printable(frame.file)}:{frame.line if frame.line is not None else '?'}"
            if frame.file
            else ""
        )
        yield f"    inlined {printable(frame.function)}{source}"
    if result.note:
        yield f"    note: {printable(result.note)}"


@click.command("symbolize")
@click.argument("image_or_pdb", type=click.Path(dir_okay=False))
@click.argument("addresses", nargs=-1)
@click.option("--base", help="Image base (hex): the addresses are virtual addresses, not RVAs.")
@click.option(
    "--symbols",
    "symbol_path",
    help="Symbol path to find the image's PDB (srv*CACHE*URL;folder;...); default: _NT_SYMBOL_PATH.",
)
@click.option(
    "--return-address", is_flag=True, help="Addresses are return addresses: report the call's line."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per line.",
)
def command(
    image_or_pdb: str,
    addresses: tuple[str, ...],
    base: str | None,
    symbol_path: str | None,
    return_address: bool,
    fmt: str,
) -> None:
    """Resolve ADDRESSES (RVAs, or VAs with --base; stdin when none or -) in a driver image or PDB."""
    try:
        base_value = parse_address(base) if base else 0
    except ValueError:
        _fail(f"bad --base value {base!r}: expected a hex address")
    store = SymbolStore(symbol_path if symbol_path is not None else symbol_path_from_environment())
    try:
        symbols = ImageSymbols.from_path(image_or_pdb, store)
    except OSError as error:
        _fail(f"cannot read {image_or_pdb}: {error.strerror or error}")
    except ValueError as error:
        _fail(str(error))
    for note in symbols.notes:
        warn(note, prefix=PREFIX)
    if symbols.image is not None and symbols.pdb is None:
        warn("no matching PDB; falling back to exports and .pdata", prefix=PREFIX)

    bad = False
    incomplete = False
    pending: list[str] = []
    for text, position, answer_now in _addresses(addresses):
        try:
            value = parse_address(text)
        except ValueError:
            warn(f"bad address {text!r} (#{position})", prefix=PREFIX)
            bad = True
            continue
        if value < base_value:
            warn(f"{text} is below --base {base_value:#x}", prefix=PREFIX)
            bad = True
            continue
        result = symbols.resolve_rva(value - base_value, return_address=return_address, file_notes=False)
        incomplete |= result.resolved_by != "pdb"
        if fmt == "json":
            pending.append(_json_line(result, base_value) + "\n")
        else:
            pending.extend(line + "\n" for line in _text_lines(result, symbols.name, base_value))
        if answer_now:
            emit("".join(pending))
            pending.clear()
    emit("".join(pending))
    if bad:
        sys.exit(ExitCode.USAGE)
    if incomplete:
        sys.exit(ExitCode.INCOMPLETE)


def _fail(message: str) -> NoReturn:
    warn(message, prefix=PREFIX)
    sys.exit(ExitCode.USAGE)
