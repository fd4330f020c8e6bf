"""Offline check of driver images: header rules and call-site analysis, as incidents of the engine's model.

``scan_paths`` takes files, folders (every ``*.sys`` below them) and glob patterns; each image is read with
``symbols.pe``, judged by :mod:`hvci.images.rules` and :mod:`hvci.images.callsites`, and turned into
:class:`~hvci.model.Incident` objects of kind ``image`` and ``call-site`` so that every writer (text, JSON,
SARIF) and the TUI show them like log findings. An image that cannot be read is reported as
``could-not-analyse`` with the reason and the others go on.

Incidents of an image point at it with a span whose lines are 0 (a binary has no lines); call sites carry a
``Caller`` with the RVA as offset and the preferred address (image base + RVA).

Call sites are named from the image's PDB when one is found and matches (``--pdb``, next to the image under
the CodeView name, or in a local symbol store on the symbol path), else from exports or ``.pdata``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import msgspec

from hvci import bucket
from hvci.details import (
    CallSiteDetails,
    Level,
    NamedValue,
    UncalledImportDetails,
    image_details,
    level_of,
)
from hvci.images.callsites import (
    BANNED,
    EXECUTABLE,
    SAFE,
    UNKNOWN,
    CallSite,
    CallSiteAnalysis,
    FunctionName,
    analyse_calls,
)
from hvci.images.headers import ImageHeaders
from hvci.images.rules import COULD_NOT_ANALYSE, FAIL, RuleResult, check_headers
from hvci.knowledge import decode
from hvci.model import Caller, Confidence, Evidence, Incident
from parsers.records import Diagnostic, InputInfo, Severity, Span
from parsers.walk import expand
from symbols.pdb import PdbError, PdbFile, load_pdb
from symbols.pe import PeError, PeImage, read_image_file
from symbols.resolve import ImageSymbols
from symbols.store import SymbolStore, check_pdb_match

#: Incident/result levels, most severe first (SARIF's vocabulary).
LEVELS = ("error", "warning", "note")

#: Level of a call-site verdict. A banned API (no argument decides) is a warning: Driver Verifier has no
#: hook that reports it, but Code Analysis C30029 bans it.
SITE_LEVELS: dict[str, Level] = {EXECUTABLE: "error", BANNED: "warning", UNKNOWN: "note"}

ImageStatus = Literal["analysed", "partial", "could-not-analyse", "unreadable"]
IMAGE_STATUSES: tuple[ImageStatus, ...] = get_args(ImageStatus)


class ImageReport(msgspec.Struct, frozen=True):
    """Everything learnt about one image. ``status``: ``analysed``, ``partial`` (some part could not be
    read or a cap was hit; see ``diagnostics``), ``could-not-analyse`` (not a PE image) or ``unreadable``
    (the file could not be opened)."""

    path: str
    status: ImageStatus
    facts: Mapping[str, Any] = msgspec.field(default_factory=dict)
    rules: tuple[RuleResult, ...] = ()
    calls: CallSiteAnalysis | None = None
    incidents: tuple[Incident, ...] = ()
    diagnostics: tuple[str, ...] = ()
    symbols: str | None = None  # the PDB the call sites were named from, or why none was used

    @property
    def call_sites(self) -> tuple[CallSite, ...]:
        return self.calls.sites if self.calls else ()

    @property
    def input_info(self) -> InputInfo:
        """The image as an input of the report (what SARIF's invocation notifications are made from)."""
        severity: Severity = "error" if self.status in ("could-not-analyse", "unreadable") else "warning"
        diags = tuple(Diagnostic(Span(self.path, 0, 0), d, severity) for d in self.diagnostics)
        size = int(self.facts.get("file_size", 0))
        return InputInfo(self.path, "pe-image", "binary", 0, size, diags)


class ScanReport(msgspec.Struct, frozen=True):
    images: tuple[ImageReport, ...]
    root: str  # where the scan ran: SARIF URIs are relative to it (%SRCROOT%), as GitHub expects

    @property
    def incidents(self) -> tuple[Incident, ...]:
        return tuple(i for image in self.images for i in image.incidents)

    @property
    def inputs(self) -> tuple[InputInfo, ...]:
        return tuple(image.input_info for image in self.images)

    @property
    def rule_results(self) -> tuple[tuple[str, RuleResult], ...]:
        return tuple((image.path, r) for image in self.images for r in image.rules)

    @property
    def incomplete(self) -> bool:
        """Some image, rule or call site could not be decided: never report such a run as clean."""
        return any(
            image.status != "analysed"
            or any(r.status == COULD_NOT_ANALYSE for r in image.rules)
            or any(s.verdict == UNKNOWN for s in image.call_sites)
            or any(i.call_sites == 0 for i in (image.calls.imported if image.calls else ()))
            for image in self.images
        )


def incident_level(incident: Incident) -> str:
    """The SARIF-style level of a scan incident (``error``, ``warning`` or ``note``)."""
    return level_of(incident.details) or "error"


# ------------------------------------------------------------------------------------------- inputs


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(".sys")


def expand_paths(paths: Iterable[str | Path]) -> list[tuple[str, Path | None, str | None]]:
    """Files as given, folders as every ``*.sys`` below them, glob patterns expanded
    (:func:`parsers.walk.expand`): ``(shown, path, None)`` to scan, or ``(shown, None, why not)`` for what
    cannot be (a dangling link, a FIFO, a folder without images, a pattern that matches nothing), so that
    the caller reports it and the run is never clean."""
    out: list[tuple[str, Path | None, str | None]] = []
    for entry in expand((str(p) for p in paths), _is_image_name):
        if entry.problem is None:
            out.append((entry.name, Path(entry.name), None))
        else:
            reason = "no .sys file in this folder" if os.path.isdir(entry.name) else entry.problem
            out.append((entry.name, None, reason))
    return out


class ImageScanner(msgspec.Struct, frozen=True):
    """How each image of a run is scanned (the PDBs given, the symbol path), as one picklable callable:
    the same scan runs in this process or in a worker (:mod:`hvci.batch.images`)."""

    pdbs: Sequence[str] | Mapping[str, str] = ()
    symbol_path: str | None = None

    def __call__(self, image: tuple[str, Path]) -> ImageReport:
        shown, path = image
        return scan_image(path, display=shown, pdbs=self.pdbs, symbol_path=self.symbol_path)


#: How the readable images of a run are scanned: their reports in the order given (in this process by
#: default; :func:`hvci.batch.images.in_workers` spreads them over isolated worker processes).
ScanMany = Callable[[ImageScanner, Sequence[tuple[str, Path]]], Iterable[ImageReport]]


def scan_paths(
    paths: Iterable[str | Path],
    *,
    symbol_path: str | None = None,
    pdb: Sequence[str] | Mapping[str, str] | str | None = None,
    scan_many: ScanMany | None = None,
) -> ScanReport:
    """Scan images; each is shown by the path as given (folders joined with what was found in them).
    ``pdb`` is a PDB file, a list of them (each image takes the one whose debug id matches), or a mapping of
    image file name to PDB file."""
    expanded = expand_paths(paths)
    scanner = ImageScanner(_pdb_choices(pdb), symbol_path)
    readable = [(text, path) for text, path, _ in expanded if path is not None]
    scanned = iter(scan_many(scanner, readable) if scan_many is not None else map(scanner, readable))
    images = tuple(
        next(scanned) if path is not None else _unreadable(text, problem or "cannot be read")
        for text, path, problem in expanded
    )
    return ScanReport(images, str(Path.cwd()))


def _unreadable(path: str, reason: str) -> ImageReport:
    return ImageReport(path, "unreadable", diagnostics=(reason,))


# ------------------------------------------------------------------------------------------ one image


def scan_image(
    path: Path | str,
    *,
    display: str | None = None,
    data: bytes | None = None,
    pdbs: Sequence[str] | Mapping[str, str] = (),
    symbol_path: str | None = None,
) -> ImageReport:
    """Scan one image (from ``data`` when given, e.g. a test's mutated bytes)."""
    path = Path(path)
    shown = display or path.as_posix()
    try:
        raw = data if data is not None else read_image_file(path)
    except OSError as error:
        return _unreadable(shown, f"cannot read: {error.strerror or error}")
    try:
        pe = PeImage.open(raw, name=shown)
    except PeError as error:
        return ImageReport(
            shown,
            "could-not-analyse",
            facts={"file_size": len(raw)},
            diagnostics=(str(error).removeprefix(f"{shown}: "),),  # the report names the file already
        )
    diagnostics = list(pe.diagnostics)
    facts = image_facts(pe, raw)
    rules = tuple(check_headers(ImageHeaders.from_pe(pe, module=path.name)))
    pdb_info = _symbols(pe, path, pdbs, symbol_path)
    calls = _analyse_guarded(pe, pdb_info)
    diagnostics.extend(calls.notes if calls.status in ("partial", "could-not-analyse") else ())
    partial = diagnostics or calls.status in ("partial", "could-not-analyse")
    status: ImageStatus = "partial" if partial else "analysed"
    incidents = (*_rule_incidents(shown, path.name, rules), *_site_incidents(shown, path.name, pe, calls))
    return ImageReport(
        shown, status, facts, rules, calls, tuple(incidents), tuple(diagnostics), pdb_info.note
    )


def _analyse_guarded(pe: PeImage, symbols: _Symbols) -> CallSiteAnalysis:
    """The call-site pass must never take the scan down: a failure is reported, the header rules stand."""
    try:
        return analyse_calls(pe, namer=symbols.namer, extra_functions=symbols.ranges)
    except Exception as error:  # a decoder or pefile corner we did not foresee, on a hostile image
        return CallSiteAnalysis(
            "could-not-analyse", notes=(f"call-site analysis failed: {type(error).__name__}: {error}",)
        )


def image_facts(pe: PeImage, raw: bytes) -> dict[str, Any]:
    """What a reviewer wants to know about the image, beside the rules."""
    prefix = "IMAGE_DLLCHARACTERISTICS_"  # named bits only, from constants.toml; unknown bits are left out
    flags = [
        part.removeprefix(prefix)
        for part in decode.dll_characteristics(pe.dll_characteristics).parts
        if part.startswith(prefix)
    ]
    stamp = datetime.fromtimestamp(pe.timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if pe.timestamp else None
    codeview = pe.codeview
    return {
        "file_size": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "machine": pe.machine,
        "format": "PE32+" if pe.is_pe32_plus else "PE32",
        "subsystem": pe.subsystem_name,
        "linker_version": f"{pe.linker_version[0]}.{pe.linker_version[1]}",
        "timestamp": pe.timestamp,
        "timestamp_utc": stamp,
        "image_base": pe.image_base,
        "size_of_image": pe.size_of_image,
        "section_alignment": pe.section_alignment,
        "file_alignment": pe.file_alignment,
        "entry_point": pe.entry_point,
        "dll_characteristics": pe.dll_characteristics,
        "dll_characteristics_flags": flags,
        "nx_compat": "NX_COMPAT" in flags,
        "force_integrity": "FORCE_INTEGRITY" in flags,
        "signed": pe.is_signed,
        "codeview": None
        if codeview is None
        else {
            "pdb_name": codeview.pdb_name,
            "guid": codeview.guid,
            "age": codeview.age,
            "debug_id": codeview.debug_id,
        },
        "code_id": pe.code_id,
        "sections": [
            {
                "name": s.name,
                "rva": s.virtual_address,
                "size": s.virtual_size,
                "characteristics": s.characteristics,
                "flags": s.flags,
            }
            for s in pe.sections
        ],
        "imports": len(pe.imports),
        "functions": len(pe.functions),
    }


# ----------------------------------------------------------------------------------------- symbols


def _pdb_choices(pdb: Sequence[str] | Mapping[str, str] | str | None) -> Sequence[str] | Mapping[str, str]:
    if pdb is None:
        return ()
    if isinstance(pdb, str):
        return (pdb,)
    return pdb


def _explicit_pdbs(path: Path, pdbs: Sequence[str] | Mapping[str, str]) -> list[Path]:
    """The PDB files given on the command line for this image: ``name=file`` entries for it, or every file
    of a plain list (each image takes the one whose GUID and age match)."""
    if isinstance(pdbs, Mapping):
        return [Path(pdbs[key]) for key in (path.name, path.name.lower(), str(path)) if key in pdbs]
    return [Path(p) for p in pdbs]


class _Symbols(msgspec.Struct, frozen=True):
    """What a matching PDB gives the call-site pass: function names and the procedure ranges (leaf
    functions and stubs have no ``.pdata`` entry)."""

    namer: Callable[[int], FunctionName] | None
    ranges: tuple[tuple[int, int], ...]
    note: str | None


def _symbols(
    pe: PeImage, path: Path, pdbs: Sequence[str] | Mapping[str, str], symbol_path: str | None
) -> _Symbols:
    """The PDBs given for the image first, then the one way every command finds symbols
    (:meth:`symbols.resolve.ImageSymbols.attach_pdb`: next to the image under its CodeView name, plain
    folders and two-tier stores of the symbol path, GUID and age checked, else DWARF inside the image).
    Without one, names come from exports or ``.pdata`` and the note says why."""
    rejected: list[str] = []
    for candidate in _explicit_pdbs(path, pdbs):
        try:
            pdb = load_pdb(candidate)
        except PdbError as error:
            rejected.append(f"{candidate} ({error})")
            continue
        match = check_pdb_match(pe, pdb.debug_id, str(candidate))
        if match.ok:
            return _Symbols(_pdb_namer(pe, pdb), pdb.procedure_ranges, str(candidate))
        rejected.append(str(match.message))
    found = ImageSymbols(name=path.name, image=pe)
    found.attach_pdb(SymbolStore(symbol_path), path.parent)
    if found.pdb is not None:
        source = Path(found.pdb.path)
        note = str(source) if found.pdb.kind == "pdb" else f"{source} (DWARF inside the image)"
        ranges = found.pdb.procedure_ranges if found.pdb.kind == "pdb" else ()
        return _Symbols(_pdb_namer(pe, found.pdb), ranges, note)
    reasons = [*rejected, *found.notes]
    if rejected:
        return _Symbols(None, (), f"no matching PDB: {'; '.join(reasons)}")
    return _Symbols(None, (), "; ".join(reasons) or None)


def _pdb_namer(pe: PeImage, pdb: PdbFile) -> Callable[[int], FunctionName]:
    def name(rva: int) -> FunctionName:
        symbol = pdb.lookup(rva)
        if symbol is not None:
            return FunctionName(symbol.function, symbol.function_rva, "pdb", symbol.file, symbol.line)
        span = pe.function_at(rva)
        if span is not None:
            return FunctionName(f"sub_{span[0]:x}", span[0], "pdata")
        return FunctionName(None, None, "none")

    return name


# --------------------------------------------------------------------------------------- incidents


def _rule_incidents(path: str, module: str, rules: Sequence[RuleResult]) -> list[Incident]:
    out = []
    for rule in rules:
        if rule.status != FAIL:
            continue
        category = rule.category
        details = image_details(rule.rule_id, rule.level, rule.details, rule.status, rule.message)
        out.append(
            Incident(
                id=f"{path}#{rule.rule_id}",
                source=Span(path, 0, 0),
                kind="image",
                category=category,
                hvci_related=category is not None,
                confidence="certain",
                title=rule.message,
                driver=module,
                details=details,
                evidence=tuple(Evidence(e, Span(path, 0, 0), "deciding") for e in rule.evidence),
                bucket=bucket.bucket_id(category or rule.rule_id, module=module, function=_rule_key(rule)),
                count=rule.count,
            )
        )
    return out


def _rule_key(rule: RuleResult) -> str | None:
    """The bucket's "function" part for an image rule: the sub-rule (``init``), so INIT and W+X differ."""
    return rule.rule_id.split("/", 1)[1] if "/" in rule.rule_id else None


def _site_incidents(path: str, module: str, pe: PeImage, calls: CallSiteAnalysis) -> list[Incident]:
    out = []
    for site in calls.sites:
        if site.verdict == SAFE:
            continue
        out.append(site_incident(path, module, pe.image_base, site))
    for imported in calls.imported:
        if imported.call_sites == 0:
            out.append(_uncalled_import(path, module, imported.api, imported.dll, imported.category))
    return out


def site_incident(path: str, module: str, image_base: int, site: CallSite) -> Incident:
    """One call site as an incident: executable and banned ones are findings, unknown ones a note."""
    level = SITE_LEVELS[site.verdict]
    fn = site.function
    caller = Caller(
        address=image_base + site.rva,
        module=module,
        offset=site.rva,
        function=fn.name,
        displacement=site.displacement,
        file=fn.file,
        line=fn.line,
        resolved_by=fn.resolved_by,
    )
    where = (
        f"{fn.name}+0x{site.displacement:x}"
        if fn.name and site.displacement is not None
        else f"RVA 0x{site.rva:x}"
    )
    confidence: Confidence
    if site.verdict == EXECUTABLE:
        title = f"{site.api} in {where}: {site.reason}"
        confidence = "likely"
    elif site.verdict == BANNED:
        title = f"{site.api} in {where}: banned API, {site.reason}"
        confidence = "likely"
    else:
        title = f"{site.api} in {where}: argument not known statically ({site.reason})"
        confidence = "possible"
    # the values sit under the name of their argument kind (a field of CallSiteDetails, a test checks)
    values = {
        site.argument_kind.replace("-", "_"): tuple(
            NamedValue(v, n) for v, n in zip(site.values, site.decoded, strict=True)
        )
    }
    details = CallSiteDetails(
        level,
        site.verdict,
        site.api,
        site.dll,
        site.rva,
        site.how,
        site.instruction,
        site.argument_index,
        site.argument_kind,
        site.reason,
        replacement=site.replacement,
        **(values if site.values else {}),
    )
    evidence = (
        Evidence(f"`{site.instruction}` at RVA 0x{site.rva:x} ({site.how})", Span(path, 0, 0), "deciding"),
        Evidence(site.reason, Span(path, 0, 0), "deciding" if site.verdict != UNKNOWN else "supporting"),
    )
    return Incident(
        id=f"{path}@0x{site.rva:x}",
        source=Span(path, 0, 0),
        kind="call-site",
        category=site.category,
        hvci_related=True,
        confidence=confidence,
        title=title,
        caller=caller,
        driver=module,
        details=details,
        evidence=evidence,
        bucket=bucket.bucket_id(site.category, module=module, function=fn.name, offset=site.rva),
    )


def _uncalled_import(path: str, module: str, api: str, dll: str, category: str) -> Incident:
    """An affected API the image imports but whose calls were not found (a function-pointer table, code
    we could not decode): unknown, not clean."""
    reason = (
        f"{api} is imported from {dll} but no call site was found (called through a pointer table, "
        "or from code the analysis could not decode): check its uses by hand"
    )
    return Incident(
        id=f"{path}#import:{api}",
        source=Span(path, 0, 0),
        kind="call-site",
        category=category,
        hvci_related=True,
        confidence="possible",
        title=reason,
        driver=module,
        details=UncalledImportDetails("note", UNKNOWN, api, dll, reason),
        evidence=(Evidence(reason, Span(path, 0, 0), "supporting"),),
        bucket=bucket.bucket_id(category, module=module, function=api),
    )
