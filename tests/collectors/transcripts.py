"""Recorded transcripts: a debugger log cut at its prompts into the answers a debugger would give the
collectors, and replaying them into a session file through a stand-in ``pykd`` or a stand-in WinDbg host.

A transcript answers exactly the commands the collectors send: the fixed ones (``!analyze -v``, ``kb``,
``lm`` ...) with what the log's matching command printed (any ``k``-family listing answers ``kb``, any
``lm`` listing ``lm``), ``ln``/``dS``/``da`` only for the address the log itself looked up, and ``!dh``
of whatever address the collector asks with the log's ``!dh``/``!lmi`` dump. What the target printed
before the first prompt or while running (``g``) is what ``!dbgprint`` shows on a live target. A log
without prompts is one command's answer: ``!analyze -v`` when it is an analysis, else ``!dbgprint``.
"""

from __future__ import annotations

import json
import re
import runpy
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import HANG_SECONDS

ROOT = Path(__file__).resolve().parents[2]
PYKD_SCRIPT = ROOT / "collectors" / "pykd_collector.py"
JS_SCRIPT = ROOT / "collectors" / "windbg_collector.js"
JS_HOST = Path(__file__).resolve().parent / "standin_host.js"

_PROMPT = re.compile(r"^\s*(?:\d+:\s*)?k?d> ?(?P<command>.*?)\s*$")
_ADDRESS = re.compile(r"^(?P<kind>ln|dS|du|da)\s+(?:0x)?(?P<address>[0-9a-fA-F`]{1,17})\s*$")


@dataclass
class Transcript:
    """Command -> output, the way the collectors ask."""

    fixed: dict[str, str] = field(default_factory=dict)
    addressed: dict[tuple[str, int], str] = field(default_factory=dict)
    image_dump: str | None = None

    def answer(self, command: str) -> str:
        if command in self.fixed:
            return self.fixed[command]
        kind, _, argument = command.partition(" ")
        if kind == "!dh" and self.image_dump is not None:
            return self.image_dump
        if kind in ("ln", "dS", "da") and argument.startswith("0x"):
            return self.addressed.get((kind, int(argument, 16)), "")
        return ""

    def _add(self, command: str, output: str) -> None:
        fixed = _fixed_name(command)
        if fixed is not None:
            self.fixed[fixed] = self.fixed.get(fixed, "") + output
            return
        match = _ADDRESS.match(command)
        if match is not None:
            kind = "dS" if match["kind"] == "du" else match["kind"]
            self.addressed.setdefault((kind, int(match["address"].replace("`", ""), 16)), output)
        elif re.match(r"^!(?:dh|lmi)\b", command):
            self.image_dump = (self.image_dump or "") + output


def _fixed_name(command: str) -> str | None:
    if command.startswith("!analyze"):
        return "!analyze -v"
    if re.match(r"^k[bBvnNfFpPcdL]{0,4}(?:\s*[0-9a-fA-Fx`]+)?\s*$", command):  # k, kb, kNL, k100 ...
        return "kb"
    if re.match(r"^(?:lm|!lm\b)", command):
        return "lm"
    if command.startswith("!verifier"):
        return "!verifier 1"
    if command in (".bugcheck", "vertarget"):
        return command
    if command == "g" or command.startswith("g "):
        return "!dbgprint"
    return None


def from_log(text: str) -> Transcript:
    """The transcript of a plain debugger log."""
    transcript = Transcript()
    command: str | None = None
    output: list[str] = []
    for line in text.splitlines():
        prompt = _PROMPT.match(line)
        if prompt is not None and "kd>" in line:
            _close(transcript, command, output)
            command, output = prompt["command"], []
        else:
            output.append(line)
    _close(transcript, command, output)
    return transcript


def _close(transcript: Transcript, command: str | None, output: list[str]) -> None:
    text = "".join(line + "\n" for line in output)
    if command is None:
        if text.strip():
            analysis = "Bugcheck Analysis" in text or re.search(r"^Arg1: ", text, re.MULTILINE)
            transcript._add("!analyze -v" if analysis else "g", text)
        return
    transcript._add(command, text)


def read_log(path: Path) -> str:
    """A sample or real log as text (UTF-16 ``.logopen /u`` logs included)."""
    from parsers.stream import open_input

    return "".join(line.text + "\n" for line in open_input(path).lines())


def standin_pykd(answer: Callable[[str], str], sent: list[str]) -> types.ModuleType:
    """A ``pykd`` module with only ``dbgCommand``, answering from ``answer`` and remembering each command."""
    module = types.ModuleType("pykd")

    def dbgCommand(command: str) -> str:  # noqa: N802 - pykd's name
        sent.append(command)
        return answer(command)

    module.dbgCommand = dbgCommand  # type: ignore[attr-defined]
    return module


def run_pykd(answer: Callable[[str], str], session: Path, monkeypatch: object) -> list[str]:
    """Run the shipped script as ``!py`` does (``__main__``, ``sys.argv``) with a stand-in ``pykd``; the
    commands it sent."""
    sent: list[str] = []
    monkeypatch.setitem(sys.modules, "pykd", standin_pykd(answer, sent))  # type: ignore[attr-defined]
    monkeypatch.setattr(sys, "argv", [str(PYKD_SCRIPT), str(session)])  # type: ignore[attr-defined]
    monkeypatch.setenv("PATH", "")  # type: ignore[attr-defined]  # no hvci-triage: no summary here
    try:
        runpy.run_path(str(PYKD_SCRIPT), run_name="__main__")
    except SystemExit as end:
        assert end.code == 0
    return sent


def js_answers(transcript: Transcript) -> dict[str, object]:
    """A transcript as the stand-in WinDbg host reads it (addresses as hex text: JSON numbers are doubles)."""
    return {
        "fixed": transcript.fixed,
        "image_dump": transcript.image_dump,
        "addressed": [
            [kind, hex(address), output] for (kind, address), output in transcript.addressed.items()
        ],
    }


def run_js(answers: dict[str, object], session: Path) -> list[str]:
    """Run the shipped JavaScript collector under node with a stand-in WinDbg host (``standin_host.js``);
    the commands it sent."""
    done = subprocess.run(
        ["node", str(JS_HOST), str(JS_SCRIPT), str(session)],
        input=json.dumps(answers),
        capture_output=True,
        text=True,
        check=False,
        timeout=HANG_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    sent: list[str] = json.loads(done.stdout.splitlines()[-1])
    return sent
