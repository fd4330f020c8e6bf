"""De-duplication into findings: one per bucket, every occurrence kept, stable with and without symbols."""

from __future__ import annotations

from pathlib import Path

from hvci.findings import group_findings, offset_key
from hvci.logs.pipeline import analyze_inputs
from hvci.model import Caller, Incident
from parsers.records import Span
from parsers.stream import open_input

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "logs" / "session-pool-type-haxm.log"


def incident(
    ident: str, bucket: str, *, function: str | None = None, offset: int | None = 0x52F0, **kw: object
) -> Incident:
    path, line = ident.rsplit(":", 1)
    caller = Caller(address=0xFFFFF80012345000, module="IntelHaxm.sys", offset=offset, function=function)
    base: dict[str, object] = {
        "id": ident,
        "source": Span(path, int(line), int(line) + 3),
        "kind": "bugcheck",
        "category": "execute-pool-type",
        "hvci_related": True,
        "confidence": "likely",
        "title": "t",
        "caller": caller,
        "bucket": bucket,
    }
    base.update(kw)
    return Incident(**base)  # type: ignore[arg-type]


def test_same_bucket_across_files_is_one_finding_with_every_occurrence() -> None:
    a = incident("a.log:10", "execute-pool-type:intelhaxm!Alloc", function="Alloc")
    b = incident("b.log:3", "execute-pool-type:intelhaxm!Alloc", function="Alloc", count=4)
    other = incident("a.log:50", "0xd1:intelhaxm", hvci_related=False, category=None, confidence="none")
    findings = group_findings([a, other, b])
    assert [f.bucket for f in findings] == ["execute-pool-type:intelhaxm!Alloc", "0xd1:intelhaxm"]
    first = findings[0]
    assert first.count == 5
    assert [o.incident_id for o in first.occurrences] == ["a.log:10", "b.log:3"]
    assert first.first_seen.source.path == "a.log" and first.last_seen.source.path == "b.log"


def test_an_offset_only_incident_joins_the_function_bucket_at_the_same_offset() -> None:
    resolved = incident("a.log:10", "execute-pool-type:intelhaxm!Alloc", function="Alloc")
    bare = incident("b.log:3", "execute-pool-type:intelhaxm+0x52f0")
    assert offset_key(bare) == bare.bucket == offset_key(resolved)
    (finding,) = group_findings([bare, resolved])
    assert finding.bucket == "execute-pool-type:intelhaxm!Alloc"
    assert finding.aliases == ("execute-pool-type:intelhaxm+0x52f0",)
    assert finding.count == 2


def test_two_functions_at_one_offset_never_merge() -> None:
    build1 = incident("a.log:10", "execute-pool-type:intelhaxm!Alloc", function="Alloc")
    build2 = incident("b.log:3", "execute-pool-type:intelhaxm!Free", function="Free")
    bare = incident("c.log:1", "execute-pool-type:intelhaxm+0x52f0")
    buckets = [f.bucket for f in group_findings([build1, build2, bare])]
    assert buckets == [
        "execute-pool-type:intelhaxm!Alloc",
        "execute-pool-type:intelhaxm!Free",
        "execute-pool-type:intelhaxm+0x52f0",
    ]


def test_the_representative_is_the_most_certain_occurrence() -> None:
    weak = incident("a.log:1", "x:m", confidence="possible")
    strong = incident("a.log:9", "x:m", confidence="certain")
    (finding,) = group_findings([weak, strong])
    assert finding.incident is strong and finding.first_seen.incident_id == "a.log:1"


def test_the_same_log_twice_is_one_finding_per_bucket() -> None:
    text = SAMPLE.read_bytes()
    inputs = [open_input(None, data=text, name=name) for name in ("one.log", "two.log", "three.log")]
    report = analyze_inputs(inputs)
    single = group_findings(analyze_inputs([open_input(None, data=text, name="one.log")]).incidents)
    findings = group_findings(report.incidents)
    assert [f.bucket for f in findings] == [f.bucket for f in single]
    assert all(f.count == 3 * s.count for f, s in zip(findings, single, strict=True))
    assert {o.source.path for o in findings[0].occurrences} == {"one.log", "two.log", "three.log"}


def test_markdown_of_a_large_batch_fits_a_pull_request_comment() -> None:
    from hvci.report import render

    text = SAMPLE.read_bytes()
    inputs = [open_input(None, data=text, name=f"host{n:04d}.log") for n in range(300)]
    numbers = [
        open_input(None, data=text.replace(b"IntelHaxm", f"Drv{n}".encode()), name=f"d{n}.log")
        for n in range(150)
    ]
    markdown = render(analyze_inputs(inputs + numbers), "markdown")
    assert len(markdown) < 65_536
    assert "left out to fit a comment" in markdown and "more" in markdown
