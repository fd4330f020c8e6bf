"""Start-up stays small: what a command does not need for its input, it does not import.

Start-up time itself is measured by ``benchmarks/bench_startup.py`` (never by a test); these tests guard
the structure that makes it fast, by listing the modules a child process has imported after the command.
"""

from __future__ import annotations

from pathlib import Path

from parsers.registry import PARSERS
from tests.conftest import modules_loaded_after

ROOT = Path(__file__).resolve().parents[2]
CRASH_LOG = ROOT / "samples" / "logs" / "session-pool-type-haxm.log"

#: Never needed to analyse a text log without --db, --baseline, --scheduler, symbols or a terminal.
NOT_FOR_A_PLAIN_LOG = (
    "rich",
    "textual",
    "sqlite3",
    "dask",
    "distributed",
    "capstone",
    "pefile",
    "symbolic",
    "symbols.resolve",
    "symbols.pe",
    "hvci.batch.store",
    "hvci.batch.baseline",
    "hvci.batch.distributed",
    "zipfile",
    "tarfile",
    "gzip",
    "hvci.knowledge.records",
    "hvci.knowledge.files",
    "tomllib",
)
#: What the in-process run of one small text report does without: a worker pool (multiprocessing is imported
#: when a pool starts), a spill file (tempfile: only once incidents outgrow memory, or for a streamed format)
#: and HTML entities (only for a line that has one).
NOT_IN_PROCESS = (*NOT_FOR_A_PLAIN_LOG, "multiprocessing", "tempfile", "html")
#: What a short text log without a single record does without, in process: the pipeline that groups and
#: classifies records (made at the first record), the worker pool and its pickling, the JSON writer of a
#: text report, the symbol stores' paths, OpenSSL's hashing for a file this small (:mod:`hvci.digest`) and
#: ``glob`` (a path that is not a pattern).
NOT_FOR_A_SHORT_LOG_OF_NOISE = (
    *NOT_IN_PROCESS,
    "hvci.logs.pipeline",
    "hvci.logs.correlate",
    "hvci.logs.classify",
    "hvci.batch.pool",
    "pickle",
    "hvci.report.json_report",
    "json",
    "symbols.store",
    "symbols.modules",
    "pathlib",
    "hashlib",
    "glob",
)
#: What the engine itself needs only once a log holds something (a block, a group) or is not text.
NOT_FOR_A_LOG_OF_NOISE = (
    *NOT_FOR_A_PLAIN_LOG,
    "hvci.logs.classify",
    "hvci.images.rules",
    "parsers.binary",
    "parsers.dump.reader",
    "parsers.evtx_reader",
    "parsers.session",
    *(f"parsers.{registered.module}" for registered in PARSERS),
)
#: The engine, which neither ``--help`` nor ``explain`` needs.
ENGINE = (
    "parsers",
    "symbols",
    "hvci.logs",
    "hvci.batch",
    "hvci.report",
    "hvci.images",
    "hvci.model",
    "hvci.details",
)


def _heavy(loaded: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in loaded or any(m.startswith(n + ".") for m in loaded))


def test_analyze_of_a_one_line_file_imports_no_batch_extras(tmp_path: Path) -> None:
    """The parent process of ``analyze FILE`` (stdout a pipe, no lab options): no progress bar, store,
    baseline, cluster, symbol reader, archive module, nor the knowledge base's records and TOML files
    (nothing in the file needs them). After a first run: that one writes the prefilter's anchors to the
    user's cache (``tempfile``), whatever the tests before it did."""
    log = tmp_path / "one-line.log"
    log.write_text("nothing to see here\n", encoding="utf-8")
    code = f"from cli.main import run\ncode = run(['analyze', {str(log)!r}])\nassert code == 0, code"
    cache = {"HVCI_TRIAGE_CACHE_DIR": str(tmp_path / "cache")}
    assert "tempfile" in modules_loaded_after(code, cache)  # it can fail: the first run writes the entry
    assert _heavy(modules_loaded_after(code, cache), NOT_FOR_A_SHORT_LOG_OF_NOISE) == []


def test_analyze_of_a_crash_log_does_load_the_pipeline() -> None:
    """The list above can fail: a log with a crash builds the pipeline, in process."""
    code = f"from cli.main import run\ncode = run(['analyze', {str(CRASH_LOG)!r}])\nassert code == 1, code"
    loaded = _heavy(modules_loaded_after(code), NOT_FOR_A_SHORT_LOG_OF_NOISE)
    assert {"hvci.logs.pipeline", "hvci.logs.correlate", "hvci.logs.classify"} <= set(loaded)


#: What analysing one crash (a pasted ``!analyze -v``, a short KD session) does without once the caches are
#: warm: the TOML reader (the knowledge base, triage.toml included, comes from the cache) and pathlib with
#: it, dataclasses (the pipeline's and parsers' state are msgspec Structs: a dataclass costs ~0.5-1 ms of
#: generated code at import) and the follow mode's queue.
NOT_FOR_A_PASTE = ("tomllib", "pathlib", "dataclasses", "queue")
PASTE = ROOT / "samples" / "logs" / "analyze-c4-2000-modern.txt"


def test_a_warm_analyze_of_a_crash_imports_no_toml_reader_nor_dataclasses(tmp_path: Path) -> None:
    cache = {"HVCI_TRIAGE_CACHE_DIR": str(tmp_path)}
    for log in (CRASH_LOG, PASTE):
        code = f"from cli.main import run\ncode = run(['analyze', {str(log)!r}])\nassert code == 1, code"
        cold = modules_loaded_after(code, cache)
        assert "hvci.logs.classify" in cold
        assert log != CRASH_LOG or "tomllib" in cold  # the check can fail: the first run reads the files
        assert _heavy(modules_loaded_after(code, cache), NOT_FOR_A_PASTE) == [], log.name


#: The PE and PDB readers, which only symbols (``--symbols``, ``--images``) or a ``!dh`` dump call for.
SYMBOL_READERS = ("pefile", "symbolic", "symbols.resolve", "symbols.pe", "symbols.pdb", "symbols.msf")


def test_analyze_of_a_crash_log_without_symbols_imports_no_symbol_reader() -> None:
    """The classifiers name the resolver only in annotations: a crash costs no pefile import (issue 16)."""
    code = f"from cli.main import run\ncode = run(['analyze', {str(CRASH_LOG)!r}])\nassert code == 1, code"
    loaded = modules_loaded_after(code)
    assert "hvci.logs.classify" in loaded  # it can fail: the classifiers ran
    assert _heavy(loaded, SYMBOL_READERS) == []


def test_the_engine_reads_a_log_of_noise_without_classifiers_or_binary_readers(tmp_path: Path) -> None:
    """What the worker process runs for a text log without a block: no classifier, image rule, dump or
    event-log reader, session transcript or symbol resolver is imported."""
    log = tmp_path / "noise.log"
    log.write_text("nothing to see here\nnor here\n", encoding="utf-8")
    code = (
        "from hvci.logs.pipeline import analyze_inputs\nfrom parsers.stream import open_input\n"
        f"report = analyze_inputs([open_input({str(log)!r})])\nassert not report.incidents"
    )
    assert _heavy(modules_loaded_after(code), NOT_FOR_A_LOG_OF_NOISE) == []


def test_the_check_sees_what_a_crash_needs() -> None:
    """The lists above can fail: a log with a crash does import the classifiers, lazily."""
    code = (
        "from hvci.logs.pipeline import analyze_inputs\nfrom parsers.stream import open_input\n"
        f"report = analyze_inputs([open_input({str(CRASH_LOG)!r})])\nassert report.incidents"
    )
    assert "hvci.logs.classify" in _heavy(modules_loaded_after(code), NOT_FOR_A_LOG_OF_NOISE)


def test_help_imports_no_engine_and_no_knowledge() -> None:
    code = "from cli.main import run\ncode = run(['--help'])\nassert code == 0, code"
    assert _heavy(modules_loaded_after(code), (*ENGINE, "hvci.knowledge", "msgspec", "tomllib")) == []


def test_explain_reads_the_knowledge_base_from_a_warm_cache_alone(tmp_path: Path) -> None:
    """``explain 0x2000`` after a first run: the knowledge base comes from the cache (no TOML is parsed)
    and nothing of the engine or the constant decoders is imported."""
    code = "from cli.main import run\ncode = run(['explain', '0x2000'])\nassert code == 0, code"
    cache = {"HVCI_TRIAGE_CACHE_DIR": str(tmp_path)}
    cold = modules_loaded_after(code, cache)
    assert "tomllib" in cold  # the check can fail: the first run reads the files
    warm = modules_loaded_after(code, cache)
    # (the cache folder's entry files, parsers.usercache: standard library only, shared with the prefilter)
    assert (
        _heavy(warm - {"parsers", "parsers.usercache"}, (*ENGINE, "tomllib", "hvci.knowledge.decode")) == []
    )


def _scan_loads(*images: str) -> set[str]:
    paths = [
        name if name.startswith("-") else str(ROOT / "samples" / "drivers" / "build" / name)
        for name in images
    ]
    return modules_loaded_after(
        f"from cli.main import run\ntry:\n    run(['scan', *{paths!r}])\nexcept SystemExit:\n    pass"
    )


def test_scan_loads_the_disassembler_only_for_code_to_decode() -> None:
    """Images that import none of the affected APIs are judged without decoding any code: capstone and the
    decoding passes stay unloaded; one image whose calls must be followed loads them (the check can fail).
    In this process (``-j1``): a run on workers loads the decoder before they fork (hvci.batch.images)."""
    decoding = ("capstone", "hvci.images.callsites.x86", "hvci.images.callsites.passes")
    assert _heavy(_scan_loads("-j1", "wx_section.sys", "highlow_reloc.sys"), decoding) == []
    assert _heavy(_scan_loads("-j1", "wx_section.sys", "api_misuse.sys"), decoding) == sorted(decoding)


def test_a_warm_scan_of_an_image_parses_no_toml_and_starts_no_interpreter(tmp_path: Path) -> None:
    """``scan`` after a first run: the knowledge tables come from the cache (no ``tomllib``), the PDB
    reader's child is a fork (no ``subprocess``), and the records are Structs (no ``dataclasses``)."""
    image = str(ROOT / "samples" / "drivers" / "build" / "wx_section.sys")
    code = f"from cli.main import run\ntry:\n    run(['scan', {image!r}])\nexcept SystemExit:\n    pass"
    cache = {"HVCI_TRIAGE_CACHE_DIR": str(tmp_path)}
    assert "tomllib" in modules_loaded_after(code, cache)  # the check can fail: the first run reads the files
    assert _heavy(modules_loaded_after(code, cache), ("tomllib", "subprocess", "dataclasses")) == []
