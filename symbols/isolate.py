"""Run a native reader over untrusted bytes where a crash cannot take the process down.

symbolic (Rust behind cffi) reads PDBs and DWARF; one byte changed in a PDB's type stream is enough to
make it fault in native code, which no ``try`` can catch: the whole program died with SIGSEGV, the
terminal left in the TUI's alternate screen. Whatever native library reads hostile input therefore runs
here, in a child process with a memory ceiling and a deadline, and only its answer (bytes it produced,
such as a symcache, which our own process then loads) comes back. A crash, a timeout or an exhausted
memory limit becomes :class:`IsolatedFailure` with one plain sentence, and the caller falls back to our own
pure-Python readers.

Where the process has a single thread and the platform can ``fork`` (Linux, macOS), the child is a fork:
it already has the library loaded and the input in memory, so isolation costs a few milliseconds. In a
process with several threads (the TUI's loaders) a fork could inherit a lock another thread holds, so the
child is a fresh interpreter (``python -m symbols.isolate TASK``) that reads the input on stdin.

A task is a function ``bytes -> bytes`` named in :data:`TASKS`; it may raise ``ValueError`` to say the input
is not readable, which comes back as the same ``ValueError`` message.
"""

from __future__ import annotations

import faulthandler
import importlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

#: Task name -> "module:function" run in the child.
TASKS = {
    "symcache": "symbols.symcache:build_symcache",
}

#: Address-space ceiling for a child (bytes); a reader that wants more is stopped, not the machine.
MEMORY_LIMIT = 4 << 30

#: Seconds a child may run before it is killed.
TIMEOUT = 120.0

_OK, _REFUSED = b"\x00", b"\x01"


class IsolatedFailure(Exception):
    """The native reader crashed, ran out of memory or time: the input must be read another way."""


def run_isolated(task: str, data: bytes, *, timeout: float = TIMEOUT) -> bytes:
    """The task's answer for ``data``. Raises ``ValueError`` when the task refused the input and
    :class:`IsolatedFailure` when the child died or was stopped."""
    if task not in TASKS:
        raise KeyError(task)
    if hasattr(os, "fork") and threading.active_count() == 1:
        frame = _in_fork(task, data, timeout)
    else:
        frame = _in_subprocess(task, data, timeout)
    if frame[:1] == _OK:
        return frame[1:]
    if frame[:1] == _REFUSED:
        raise ValueError(frame[1:].decode("utf-8", "replace"))
    raise IsolatedFailure("the reader ended without an answer")


def _task(task: str) -> Callable[[bytes], bytes]:
    module, _, name = TASKS[task].partition(":")
    function: Callable[[bytes], bytes] = getattr(importlib.import_module(module), name)
    return function


def _answer(task: str, data: bytes) -> bytes:
    """What the child sends back: a status byte, then the answer or the refusal's message."""
    _limit_memory()
    try:
        return _OK + _task(task)(data)
    except ValueError as error:
        return _REFUSED + str(error).encode("utf-8", "replace")
    except MemoryError:
        return _REFUSED + b"the reader needed more memory than it is allowed"


def _limit_memory() -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        ceiling = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    except (ImportError, ValueError, OSError):
        pass  # no such limit on this platform: the deadline still applies


def _in_fork(task: str, data: bytes, timeout: float) -> bytes:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer, then leave without running the parent's clean-up code
        code = 0
        try:
            faulthandler.disable()  # a crash here is the expected answer, not a report for stderr
            os.close(read_end)
            frame = _answer(task, data)
            view = memoryview(frame)
            while view:
                view = view[os.write(write_end, view) :]
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        frame = _read_until(read_end, timeout, lambda: os.kill(pid, signal.SIGKILL))
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    _raise_if_died(os.WIFSIGNALED(status), os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0, frame)
    return frame


def _in_subprocess(task: str, data: bytes, timeout: float) -> bytes:
    root = str(Path(__file__).resolve().parents[1])  # the child finds the packages uninstalled too
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "symbols.isolate", task],
            input=data,
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise IsolatedFailure(f"the reader took longer than {timeout:.0f} s and was stopped") from None
    except OSError as error:
        raise IsolatedFailure(f"the reader could not be started ({error.strerror or error})") from None
    signalled = done.returncode < 0
    _raise_if_died(signalled, -done.returncode if signalled else 0, done.stdout)
    return done.stdout


def _read_until(fd: int, timeout: float, stop: Callable[[], None]) -> bytes:
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        if not ready:
            stop()
            raise IsolatedFailure(f"the reader took longer than {timeout:.0f} s and was stopped")
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _raise_if_died(signalled: bool, number: int, frame: bytes) -> None:
    if signalled:
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        raise IsolatedFailure(f"the reader crashed on this input ({name})")
    if not frame:
        raise IsolatedFailure("the reader ended without an answer")


def _child_main(task: str) -> None:
    data = sys.stdin.buffer.read()
    sys.stdout.buffer.write(_answer(task, data))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _child_main(sys.argv[1])
