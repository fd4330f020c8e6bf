"""Run a native reader over untrusted bytes where a crash cannot take the process down.

symbolic (Rust behind cffi) reads PDBs and DWARF; one byte changed in a PDB's type stream is enough to
make it fault in native code, which no ``try`` can catch: the whole program died with SIGSEGV, the
terminal left in the TUI's alternate screen. Whatever native library reads hostile input therefore runs
here, in a child process with a memory ceiling and a deadline, and only its answer (bytes it produced,
such as a symcache, which our own process then loads) comes back. A crash, a timeout or an exhausted
memory limit becomes :class:`IsolatedFailure` with one plain sentence, and the caller falls back to our own
pure-Python readers.

Where the process has a single thread and the platform can ``fork`` (Linux, macOS), the child is a fork
that already has the library loaded, and it stays for the next input: a scan of a folder of drivers reads
a PDB per image, and forking the whole interpreter each time cost more than reading the PDB (a fork and an
exit of a 50 MB process are ~3 ms of CPU; a request to the waiting child is the copy of the input). The
child serves at most :data:`WORKER_REQUESTS` inputs and leaves when its parent closes the pipe or is gone;
a crash or a deadline costs the input it was reading, and the next input gets a new child. In a process
with several threads (the TUI's loaders) a fork could inherit a lock another thread holds, so the child is
a fresh interpreter (``python -m symbols.isolate TASK``) that reads the input on stdin.

A task is a function ``bytes -> bytes`` named in :data:`TASKS`; it may raise ``ValueError`` to say the input
is not readable, which comes back as the same ``ValueError`` message.
"""

from __future__ import annotations

import atexit
import faulthandler
import importlib
import os
import select
import signal
import struct
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

#: Inputs one forked child reads before a new one replaces it (what a native reader leaks stays bounded).
WORKER_REQUESTS = 64

_OK, _REFUSED = b"\x00", b"\x01"
#: A request to the forked child: length of the task's "module:function", length of the input.
_REQUEST = struct.Struct("<IQ")
_ANSWER = struct.Struct("<Q")


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


def _task(spec: str) -> Callable[[bytes], bytes]:
    module, _, name = spec.partition(":")
    function: Callable[[bytes], bytes] = getattr(importlib.import_module(module), name)
    return function


def _answer(spec: str, data: bytes) -> bytes:
    """What the child sends back for the task ``spec`` ("module:function"): a status byte, then the answer
    or the refusal's message."""
    try:
        return _OK + _task(spec)(data)
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


class _Worker:
    """The forked child that reads inputs one after the other, and this process's ends of its pipes."""

    def __init__(self) -> None:
        requests_read, self.requests = os.pipe()
        self.answers, answers_write = os.pipe()
        self.owner = os.getpid()
        self.served = 0
        self.pid = os.fork()
        if self.pid == 0:  # the child: serve, then leave without running the parent's clean-up code
            code = 0
            try:
                faulthandler.disable()  # a crash here is the expected answer, not a report for stderr
                os.close(self.requests)
                os.close(self.answers)
                _limit_memory()
                _serve(requests_read, answers_write, self.owner)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(requests_read)
        os.close(answers_write)

    def ask(self, spec: str, data: bytes, timeout: float) -> bytes | None:
        """The child's frame for the input, or None when the child was gone before it read the input (killed
        from outside), so that a new one is asked. Raises :class:`IsolatedFailure` when the child crashed on
        the input or overran the deadline."""
        deadline = time.monotonic() + timeout
        name = spec.encode("utf-8")
        try:
            _write_all(self.requests, _REQUEST.pack(len(name), len(data)) + name)
            _write_all(self.requests, data)
        except BrokenPipeError:
            self.close()
            return None
        self.served += 1
        head = _read_exact(self.answers, _ANSWER.size, deadline)
        frame: bytes | None = b""
        if head is not None and len(head) == _ANSWER.size:
            frame = _read_exact(self.answers, _ANSWER.unpack(head)[0], deadline)
        if head is None or frame is None:  # the deadline passed
            self.close()
            raise IsolatedFailure(f"the reader took longer than {timeout:.0f} s and was stopped")
        if frame:
            return frame
        status = self.close(stop=False)  # no answer: the child ended, and how tells why
        raise _failure(os.WIFSIGNALED(status), os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0)

    def close(self, *, stop: bool = True) -> int:
        """Let the child go and reap it; its wait status. ``stop``: end it rather than wait for it to see
        the pipe closed (a process forked from ours may hold the pipe open, and then it never would)."""
        for fd in (self.requests, self.answers):
            os.close(fd)
        if self.owner != os.getpid():
            return 0  # a copy inherited through a fork of this process: not our child to reap
        if stop:
            os.kill(self.pid, signal.SIGKILL)  # a child that already ended waits to be reaped: no error
        return os.waitpid(self.pid, 0)[1]


_worker: _Worker | None = None


@atexit.register
def let_worker_go() -> None:
    """At exit the child is let go and reaped, not orphaned: its CPU time counts in the command's (what
    ``time`` reports), and nothing of the command outlives it. A process that leaves without ``atexit``
    (a ``multiprocessing`` worker) calls this itself."""
    global _worker
    if _worker is not None:
        worker, _worker = _worker, None
        worker.close()


def _in_fork(task: str, data: bytes, timeout: float) -> bytes:
    """The frame for ``data`` from the forked child, started (again) when there is none."""
    global _worker
    spec = TASKS[task]
    for _ in range(2):  # a child found gone is replaced, once
        if _worker is not None and _worker.owner != os.getpid():
            _worker.close()
            _worker = None
        if _worker is None:
            _worker = _Worker()
        worker = _worker
        try:
            frame = worker.ask(spec, data, timeout)
        except IsolatedFailure:
            _worker = None
            raise
        if frame is None:
            _worker = None
            continue
        if worker.served >= WORKER_REQUESTS:
            worker.close()
            _worker = None
        return frame
    raise IsolatedFailure("the reader ended without an answer")


def _serve(requests: int, answers: int, parent: int) -> None:
    """The forked child's loop: each input is answered in turn, until the parent closes the pipe or is
    gone (a process forked from the parent may hold the pipe open), or :data:`WORKER_REQUESTS` are
    answered."""
    for _ in range(WORKER_REQUESTS):
        while not select.select([requests], [], [], 1.0)[0]:
            if os.getppid() != parent:
                return
        head = _read_exact(requests, _REQUEST.size, None) or b""
        if len(head) < _REQUEST.size:
            return  # the parent closed the pipe
        name_size, data_size = _REQUEST.unpack(head)
        spec = (_read_exact(requests, name_size, None) or b"").decode("utf-8")
        frame = _answer(spec, _read_exact(requests, data_size, None) or b"")
        _write_all(answers, _ANSWER.pack(len(frame)) + frame)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes | None:
    """``size`` bytes from ``fd`` (fewer at its end), or None when ``deadline`` passed first."""
    chunks: list[bytes] = []
    left = size
    while left > 0:
        if deadline is not None and not select.select([fd], [], [], max(deadline - time.monotonic(), 0))[0]:
            return None
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _in_subprocess(task: str, data: bytes, timeout: float) -> bytes:
    import subprocess  # only where no fork may be used (threads, Windows): ~2 ms of every start

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


def _raise_if_died(signalled: bool, number: int, frame: bytes) -> None:
    if signalled or not frame:
        raise _failure(signalled, number)


def _failure(signalled: bool, number: int) -> IsolatedFailure:
    """Why a child gave no answer: killed by signal ``number`` (a crash), or it just ended."""
    if not signalled:
        return IsolatedFailure("the reader ended without an answer")
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    return IsolatedFailure(f"the reader crashed on this input ({name})")


def _child_main(task: str) -> None:
    data = sys.stdin.buffer.read()
    _limit_memory()
    sys.stdout.buffer.write(_answer(TASKS[task], data))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _child_main(sys.argv[1])
