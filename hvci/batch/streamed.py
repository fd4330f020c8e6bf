"""A batch report made as the batch streams (:func:`hvci.batch.run.stream_batch`), in bounded memory.

JSON and JSON Lines name every input (lines, bytes, diagnostics) before the incidents, and an input's
account is complete only once it has been read; the findings and the summary come after them. So the
incidents are written, as they arrive, to a temporary file in their final text (the piece each takes in
the document) while the findings (:class:`hvci.findings.FindingsBuilder`, occurrences spilled to disk by
:class:`hvci.batch.spill.Occurrences`) and the summary counts are kept; :meth:`StreamedReport.pieces`
then writes the header, copies the file and writes findings and summary. Memory stays flat whatever the
number of incidents (it grows with the number of buckets and inputs), and the text is exactly what the
whole-report writers make.

The other formats (text, Markdown, HTML, SARIF) lay a report out as a whole (findings first, with their
places), so for them the incidents are kept and the report rendered at the end, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import IO, TYPE_CHECKING

from hvci.batch.spill import Occurrences, spill_error
from hvci.batch.work import IncidentBatch, InputResult
from hvci.findings import FindingsBuilder, FindingTally
from hvci.model import SCHEMA, Baseline, Incident, Report
from hvci.report import render_pieces
from hvci.report.totals import Totals

if TYPE_CHECKING:
    from hvci.report.json_report import IncidentPieces

#: Formats written through the temporary file; the others are rendered from a whole report.
STREAMED = ("json", "jsonl")

#: Characters of the spooled incidents copied at once: the text read, the bytes it was decoded from and the
#: bytes it is written as are all in memory together, so a larger piece only raises the peak at the end of a
#: long run (at 1 Mi characters, about 3 MB above what a small report's copy takes; issue 16).
_CHUNK = 64 * 1024


class StreamedReport:
    """Feed it a batch's incident batches and input results in order; then :meth:`pieces`. Use as a context
    manager (the temporary files go at the end)."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.results: list[InputResult] = []  # without their incidents
        self.totals = Totals()
        self._occurrences = Occurrences()
        self._findings = FindingsBuilder(self._occurrences)
        self._kept: list[Incident] | None = None if fmt in STREAMED else []
        self._pieces: IncidentPieces | None = None
        self._spool: IO[str] | None = None
        if fmt in STREAMED:
            import tempfile  # (~5 ms of start-up, for the streamed formats alone, as is their writer)

            from hvci.report.json_report import IncidentPieces

            self._pieces = IncidentPieces(fmt)
            try:
                self._spool = tempfile.TemporaryFile(  # noqa: SIM115 - closed by __exit__
                    "w+", encoding="utf-8", errors="surrogatepass", newline=""
                )
            except OSError as error:
                raise spill_error(error) from None

    def __enter__(self) -> StreamedReport:
        return self

    def __exit__(self, *_: object) -> None:
        if self._spool is not None:
            self._spool.close()
        self._occurrences.close()

    def add(self, part: IncidentBatch | InputResult) -> None:
        if isinstance(part, InputResult):
            self.results.append(part)
            return
        for incident in part.incidents:
            self.totals.add(incident)
            self._findings.add(incident)
            if self._pieces is not None:
                self._write(self._pieces.piece(incident))
            else:
                assert self._kept is not None
                self._kept.append(incident)

    def _write(self, piece: str) -> None:
        assert self._spool is not None
        try:
            self._spool.write(piece)
        except OSError as error:
            raise spill_error(error) from None

    @property
    def incomplete(self) -> bool:
        """Some input could not be read in full (as :attr:`hvci.model.Report.incomplete`)."""
        return any(d.severity == "error" for r in self.results for d in r.info.diagnostics)

    @cached_property
    def findings(self) -> tuple[FindingTally, ...]:
        """The findings of everything added (ask once everything is)."""
        return self._findings.tallies()

    def pieces(self, baseline: Baseline | None = None) -> Iterator[str]:
        """The report in ``fmt``, in pieces."""
        inputs = [r.info for r in self.results]
        if self._spool is None:
            assert self._kept is not None
            report = Report(inputs=tuple(inputs), incidents=tuple(self._kept), baseline=baseline)
            yield from render_pieces(report, self.fmt)
            return
        from hvci.report.json_report import json_document, jsonl_document

        document = json_document if self.fmt == "json" else jsonl_document
        summary = self.totals.summary(self.incomplete)
        yield from document(SCHEMA, inputs, self._incidents(), self.findings, summary, baseline)

    def _incidents(self) -> Iterator[str]:
        assert self._spool is not None and self._pieces is not None
        try:
            self._spool.seek(0)
            while chunk := self._spool.read(_CHUNK):
                yield chunk
        except OSError as error:
            raise spill_error(error) from None
        yield self._pieces.end()
