"""A generated lab folder for batch tests and the batch benchmark: good logs in every shape a lab collects
(plain, UTF-16, holding a NUL byte, gzip-compressed, zipped, in a .tar.gz, the same log under several names)
mixed with inputs that cannot be read (a damaged zip, a cut-off .gz, random bytes, a dangling link, a FIFO).

:func:`build` returns what a correct batch run must say about each: the names of the good inputs (read in
full, no error) and of the bad ones (named, with an error).
"""

from __future__ import annotations

import gzip
import io
import os
import random
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "samples" / "logs"

#: Sample logs with HVCI findings, the good inputs' contents (cycled).
SAMPLES = (
    "session-pool-type-haxm.log",
    "session-non-hvci-d1-50.log",
    "session-numbers-only-and-fc.log",
    "analyze-c4-2000-modern.txt",
    "analyze-c4-2003-wx-section.txt",
)


@dataclass
class Corpus:
    folder: Path
    good: list[str] = field(default_factory=list)  # input names that must be read without an error
    bad: list[str] = field(default_factory=list)  # input names that must be named with an error
    empty: list[str] = field(default_factory=list)  # read, nothing in them

    @property
    def inputs(self) -> int:
        return len(self.good) + len(self.bad) + len(self.empty)


def _texts() -> list[bytes]:
    return [(LOGS / name).read_bytes() for name in SAMPLES]


def _pad(data: bytes, size: int) -> bytes:
    """``data`` followed by debugger noise up to ``size`` bytes (a lab log is mostly noise)."""
    noise = b"kd> g\r\nDbgPrint: driver heartbeat tick 0x1234 status STATUS_SUCCESS\r\n"
    missing = max(0, size - len(data))
    return data + noise * (missing // len(noise) + 1) if missing else data


def build(folder: Path, logs: int = 40, *, size: int = 0, seed: int = 7, special: bool = True) -> Corpus:
    """``logs`` plain logs (each padded to ``size`` bytes when given) plus, with ``special``, one of every
    awkward kind. Deterministic for a seed."""
    rng = random.Random(seed)
    texts = _texts()
    corpus = Corpus(folder)
    plain = folder / "plain"
    plain.mkdir(parents=True)
    for number in range(logs):
        path = plain / f"host{number:05d}.log"
        path.write_bytes(_pad(texts[number % len(texts)], size))
        corpus.good.append(str(path))
    if special:
        _add_special(folder, corpus, texts, rng)
    return corpus


def _add_special(folder: Path, corpus: Corpus, texts: list[bytes], rng: random.Random) -> None:
    odd = folder / "odd"
    odd.mkdir()
    good = {
        "utf16.log": b"\xff\xfe" + texts[0].decode("latin-1").encode("utf-16-le"),
        "utf16-nobom.log": texts[3].decode("latin-1").encode("utf-16-le"),
        "nul-in-head.log": texts[0][:100] + b"\x00" + texts[0][100:],
        "duplicate-a.log": texts[1],
        "duplicate-b.log": texts[1],
        "compressed.log.gz": gzip.compress(texts[2]),
    }
    for name, data in good.items():
        (odd / name).write_bytes(data)
        corpus.good.append(str(odd / name))
    (odd / "empty.log").write_bytes(b"")
    corpus.empty.append(str(odd / "empty.log"))
    archive = odd / "lab.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("host1/kd.log", texts[0])
        zipped.writestr("host2/verifier.txt", texts[4])
    corpus.good += [f"{archive}!host1/kd.log", f"{archive}!host2/verifier.txt"]
    tarred = odd / "lab.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("a/one.log", texts[3]), ("b/two.log", texts[2])):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tarred.write_bytes(buffer.getvalue())
    corpus.good += [f"{tarred}!a/one.log", f"{tarred}!b/two.log"]
    bad = {
        "damaged.zip": archive.read_bytes()[:60],
        "cut.log.gz": gzip.compress(texts[0])[:200],
        "random.bin": rng.randbytes(64 * 1024),
    }
    for name, data in bad.items():
        (odd / name).write_bytes(data)
        corpus.bad.append(str(odd / name))
    os.symlink(odd / "gone.log", odd / "dangling.log")
    corpus.bad.append(str(odd / "dangling.log"))
    if hasattr(os, "mkfifo"):
        os.mkfifo(odd / "pipe.log")
        corpus.bad.append(str(odd / "pipe.log"))
