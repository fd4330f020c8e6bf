"""How every command ends when things go wrong around it: output that cannot be written, Ctrl+C, FIFOs,
hostile file names. Run through the real entry point (``python -m cli``) in a child process, because
CliRunner cannot show a traceback at exit, a signal, or a closed standard output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import click
import pytest

from cli import entry
from cli.commands import COMMANDS, load
from cli.exitcodes import ExitCode
from cli.main import run
from cli.output import OutputError, emit, printable
from tests.conftest import HANG_SECONDS

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "samples" / "logs" / "session-pool-type-haxm.log"
DRIVER = ROOT / "samples" / "drivers" / "build" / "api_misuse.sys"

COMMANDS_THAT_WRITE = {
    "analyze": ["analyze", str(LOG)],
    "scan": ["scan", str(DRIVER)],
    "symbolize": ["symbolize", str(DRIVER), "0x1005"],
    "explain": ["explain", "0x2000"],
}


def _run(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, cwd=ROOT, timeout=HANG_SECONDS, check=False
    )


def _one_line_error(done: subprocess.CompletedProcess[bytes]) -> str:
    lines = done.stderr.decode().strip().splitlines()
    assert b"Traceback" not in done.stderr
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("name", sorted(COMMANDS_THAT_WRITE))
def test_a_full_device_on_stdout_is_exit_2_with_one_line(name: str) -> None:
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [sys.executable, "-m", "cli", *COMMANDS_THAT_WRITE[name]],
            stdout=full,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            timeout=HANG_SECONDS,
            check=False,
        )
    assert done.returncode == ExitCode.USAGE
    assert "cannot write stdout: No space left on device" in _one_line_error(done)


@pytest.mark.parametrize("name", sorted(COMMANDS_THAT_WRITE))
@pytest.mark.skipif(os.name != "posix", reason="closes the child's fd 1 before it starts")
def test_a_closed_stdout_is_exit_2_not_silence(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli", *COMMANDS_THAT_WRITE[name]],
        stderr=subprocess.PIPE,
        cwd=ROOT,
        timeout=HANG_SECONDS,
        check=False,
        preexec_fn=lambda: os.close(1),
    )
    assert done.returncode == ExitCode.USAGE
    assert "standard output is closed" in _one_line_error(done)


def test_output_to_a_missing_folder_is_exit_2(tmp_path: Path) -> None:
    for args in (["analyze", str(LOG)], ["scan", str(DRIVER)]):
        done = _run([*args, "-o", str(tmp_path / "missing" / "report.txt")])
        assert done.returncode == ExitCode.USAGE
        assert "No such file or directory" in _one_line_error(done)


def test_a_broken_pipe_is_a_write_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        buffer = property(lambda self: self)

        def write(self, data: bytes) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stdout", Broken())
    with pytest.raises(OutputError, match="cannot write stdout: Broken pipe"):
        emit("report")


def test_a_write_error_is_exit_2_even_with_exit_zero(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr("cli.commands.analyze.emit", _raise_output_error)
    assert run(["analyze", "--exit-zero", str(LOG)]) == ExitCode.USAGE
    assert capsys.readouterr().err == "hvci-triage: cannot write stdout: Broken pipe\n"


def _raise_output_error(*_: object) -> None:
    raise OutputError("cannot write stdout: Broken pipe")


@pytest.mark.parametrize("name", ["analyze", "scan", "symbolize", "explain"])
def test_ctrl_c_inside_any_command_is_130_with_one_line(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    command = load(name)

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "callback", interrupted)
    assert run(COMMANDS_THAT_WRITE[name]) == ExitCode.INTERRUPTED
    assert capsys.readouterr().err.strip() == "hvci-triage: interrupted"


def test_ctrl_c_during_start_up_is_130_without_a_traceback(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    class Interrupting(types.ModuleType):
        def __getattr__(self, name: str) -> object:
            raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "cli.main", Interrupting("cli.main"))
    monkeypatch.setattr(sys, "argv", ["hvci-triage", "--help"])
    with pytest.raises(SystemExit) as done:
        entry()
    assert done.value.code == ExitCode.INTERRUPTED
    assert capsys.readouterr().err == "hvci-triage: interrupted\n"


#: Runs the rest of its arguments as ``python ...`` with SIGINT's default action (an exec keeps the pid).
_WITH_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


def _reading_a_pipe(pid: int) -> bool:
    """Whether the process sleeps in a read of a pipe (Linux's ``/proc/PID/wchan``)."""
    try:
        with open(f"/proc/{pid}/wchan", encoding="ascii") as wchan:
            return "pipe_read" in wchan.read()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="needs Linux's /proc/PID/wchan")
def test_a_real_sigint_while_the_command_runs_ends_with_one_line() -> None:
    """A real Ctrl+C once the command runs (here reading stdin): exit 130 and one line, no traceback.

    The signal is sent when the child is seen waiting for stdin, not "at once": where an immediate signal
    lands depends on how busy the machine is, and inside the interpreter's own start-up CPython dies with a
    fatal error and its traceback, which no program can change. A Ctrl+C while our modules are imported is
    tested in-process above.

    The child starts with SIGINT's default action, as under a terminal: a test run started in the
    background by a shell script (``pytest &``) ignores SIGINT, a child inherits that, and Python then
    leaves it ignored (rightly: so would the command started that way)."""
    child = subprocess.Popen(
        [sys.executable, "-c", _WITH_DEFAULT_SIGINT, "-m", "cli", "analyze", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + HANG_SECONDS  # only bounds a hang: the child shows no event to wait on
        while not _reading_a_pipe(child.pid):
            assert child.poll() is None and time.monotonic() < deadline, "the command never read its stdin"
            time.sleep(0.01)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=HANG_SECONDS)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert (child.returncode, err, out) == (ExitCode.INTERRUPTED, b"hvci-triage: interrupted\n", b"")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_is_read_once_and_its_writer_survives(tmp_path: Path) -> None:
    fifo = tmp_path / "live.log"
    os.mkfifo(fifo)
    written: list[BaseException | None] = []

    def writer() -> None:
        try:
            with open(fifo, "wb") as handle:
                handle.write(LOG.read_bytes())
            written.append(None)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            written.append(error)

    thread = threading.Thread(target=writer)
    thread.start()
    done = _run(["analyze", "--format", "json", str(fifo)])
    thread.join(timeout=HANG_SECONDS)
    assert written == [None]
    assert done.returncode == ExitCode.FINDINGS and b"execute-pool-type" in done.stdout


def test_hostile_file_names_reach_stderr_escaped(tmp_path: Path) -> None:
    name = tmp_path / "x\x1b]0;owned\x07\nsecond line.log"
    done = _run(["analyze", str(name)])
    line = _one_line_error(done)
    assert "\x1b" not in line and "\x07" not in line and "\\x1b]0;owned\\x07" in line


def test_printable_escapes_every_control_character() -> None:
    assert printable("a\tb\nc\x1b[2Jd\u202e") == "a\\x09b\\x0ac\\x1b[2Jd\\u202e"


def test_help_lists_every_command_without_importing_them() -> None:
    code = (
        "import sys\nfrom cli.main import run\nrun(['--help'])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('cli.commands.', 'hvci', 'textual'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    for name in COMMANDS:
        assert name in done.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_summary_is_the_commands_own_first_sentence(name: str) -> None:
    command = load(name)
    assert isinstance(command, click.Command) and command.name == name
    assert COMMANDS[name][1] == command.get_short_help_str(limit=1000)
