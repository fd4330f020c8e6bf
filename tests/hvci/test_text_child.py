"""The triage view's text child (hvci.logs.text_child): the chunks it sends, read back where it says they
lie, are the text the view's own reader gives, with their line counts; what is not the input's bytes
unchanged is sent itself."""

from __future__ import annotations

import io
import pickle
import zlib
from pathlib import Path
from typing import Any

from hvci.logs.pipeline import AnalyzeOptions
from hvci.logs.text_child import send_text
from hvci.logs.worker import Request
from parsers.chunks import LINE_CAP
from parsers.source import CHUNK_SIZE
from parsers.stream import open_input

LINE = "[VendorFilt] request 7 completed with status 0x00000000 in 12 us\n"


def _messages(path: Path | None, data: bytes | None = None) -> list[tuple[str, Any]]:
    request = Request(path=path, data=data, name="big.log", options=AnalyzeOptions(), follow=False, text=True)
    out = io.BytesIO()
    send_text(request, out)
    out.seek(0)
    messages = []
    while out.tell() < len(out.getvalue()):
        messages.append(pickle.load(out))
    return messages


def _read_back(messages: list[tuple[str, Any]], content: bytes) -> list[bytes | str]:
    """Each text message's chunk: the bytes at its place in ``content`` (with their CRC-32), or the chunk
    sent."""
    chunks: list[bytes | str] = []
    for kind, payload in messages[:-1]:
        assert kind == "text"
        sent, lines, _, _ = payload
        chunk = content[sent[0] : sent[0] + sent[1]] if isinstance(sent, tuple) else sent
        assert not isinstance(sent, tuple) or sent[2] == zlib.crc32(chunk)  # what the view checks it by
        assert lines == chunk.count("\n" if isinstance(chunk, str) else b"\n")  # type: ignore[arg-type]
        chunks.append(chunk)
    return chunks


def _expected(path: Path) -> list[bytes | str]:
    return [chunk for chunk in open_input(path).text_chunks() if chunk is not None]


def test_chunks_of_a_text_file_are_sent_as_places_after_its_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    content = b"\xef\xbb\xbffirst\r\n" + (LINE * (3 * CHUNK_SIZE // len(LINE))).encode()
    path.write_bytes(content)
    messages = _messages(path)
    assert messages[-1] == ("end", len(content))
    assert all(isinstance(payload[0], tuple) for _, payload in messages[:-1])
    assert messages[0][1][0][0] == 3  # after the mark
    assert len(messages) > 3 and _read_back(messages, content) == _expected(path)


def test_an_input_in_memory_is_sent_as_places_too() -> None:
    content = (LINE * (2 * CHUNK_SIZE // len(LINE))).encode()
    messages = _messages(None, content)
    assert all(isinstance(payload[0], tuple) for _, payload in messages[:-1])
    assert b"".join(_read_back(messages, content)) == content  # type: ignore[arg-type]


def test_chunks_that_are_not_the_inputs_bytes_are_sent_themselves(tmp_path: Path) -> None:
    wide = tmp_path / "wide.log"
    wide.write_bytes(("\ufeff" + LINE * 20_000).encode("utf-16-le"))
    messages = _messages(wide)
    assert all(isinstance(payload[0], str) for _, payload in messages[:-1])
    assert _read_back(messages, wide.read_bytes()) == _expected(wide)

    long = tmp_path / "long.log"  # a line cut at the length cap: that chunk, and every later one, is sent
    long.write_bytes((LINE * 100 + "x" * (LINE_CAP + 10) + "\n" + LINE * 40_000).encode())
    messages = _messages(long)
    kinds = [isinstance(payload[0], tuple) for _, payload in messages[:-1]]
    assert False in kinds and True not in kinds[kinds.index(False) :]
    assert _read_back(messages, long.read_bytes()) == _expected(long)


def test_an_unreadable_input_is_reported(tmp_path: Path) -> None:
    messages = _messages(tmp_path / "missing.log")
    assert len(messages) == 1 and messages[0][0] == "error" and messages[0][1].startswith("cannot read: ")
