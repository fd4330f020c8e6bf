"""Reading one knowledge file into its records, and saying exactly where a mistake is.

Every file is TOML converted by ``msgspec`` into the records of :mod:`hvci.knowledge.records`; each error
becomes a :class:`KnowledgeError` that names the file and the key path (``apis.toml: api[3].argument_kind:
'pooltype' is not one of ...``), because a silent typo in a table would turn into a wrong verdict far away.
The ``...File`` structs below are the files' top-level layout; the checks that need the whole file
(duplicates) are in their ``__post_init__``.
"""

# No ``from __future__ import annotations``: see hvci.knowledge.records.

import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import msgspec.inspect

from hvci.knowledge.records import (
    AffectedApi,
    BannerFormat,
    BugCheckInfo,
    Category,
    CiReason,
    ConstantTable,
    CounterLabel,
    EventInfo,
    ImageRule,
    Record,
    Remediation,
    SubcodeMeaning,
)
from hvci.knowledge.triage import Triage

if TYPE_CHECKING:
    from pathlib import Path

T = TypeVar("T")


class KnowledgeError(ValueError):
    """A knowledge file is missing, is not valid TOML, or has a wrong or missing key."""


def _no_repeats(items: Sequence[Any], key: str, what: str, array: str) -> None:
    seen: set[Any] = set()
    for i, item in enumerate(items):
        value = getattr(item, key)
        folded = value.lower() if isinstance(value, str) else value
        if folded in seen:
            shown = f"{value:#x}" if isinstance(value, int) and what == "bug check" else repr(value)
            raise ValueError(f"{array}[{i}].{key}: duplicate {what} {shown}")
        seen.add(folded)


class CategoriesFile(Record, frozen=True):
    category: tuple[Category, ...]

    def __post_init__(self) -> None:
        _no_repeats(self.category, "id", "category id", "category")


class Flag(Record, frozen=True):
    value: int
    bit: int
    label: str
    note: str
    sources: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.value != 1 << self.bit:
            raise ValueError(f"bit: bit {self.bit} does not match value {self.value:#x}")


class RuleClass(Record, frozen=True):
    value: int
    label: str
    note: str
    sources: tuple[str, ...]


class Banner(Record, frozen=True):
    header: str
    prefix: str
    footer: str


class VerifierFile(Record, frozen=True):
    flag: Flag
    rule_class: RuleClass
    commands: dict[str, str]
    readiness_tools: dict[str, str]
    banner: Banner
    counter: tuple[CounterLabel, ...]
    banner_format: tuple[BannerFormat, ...]


class SubcodesFile(Record, frozen=True):
    how_we_decide: str
    code_integrity_block: tuple[int, int]
    subcode: tuple[SubcodeMeaning, ...]

    def __post_init__(self) -> None:
        first, last = self.code_integrity_block
        if first > last:
            raise ValueError("code_integrity_block: needs [first, last] with first <= last")


class BugChecksFile(Record, frozen=True):
    kernel_images: tuple[str, ...]
    bugcheck: tuple[BugCheckInfo, ...]

    def __post_init__(self) -> None:
        _no_repeats(self.bugcheck, "code", "bug check", "bugcheck")


class ApisFile(Record, frozen=True):
    api: tuple[AffectedApi, ...]

    def __post_init__(self) -> None:
        _no_repeats(self.api, "name", "API", "api")


class EventsFile(Record, frozen=True):
    event: tuple[EventInfo, ...]
    ci_reason: tuple[CiReason, ...]

    def __post_init__(self) -> None:
        _no_repeats(self.event, "id", "event id", "event")
        _no_repeats(self.ci_reason, "id", "reason id", "ci_reason")


class RulesFile(Record, frozen=True):
    rule: tuple[ImageRule, ...]

    def __post_init__(self) -> None:
        _no_repeats(self.rule, "id", "rule id", "rule")


class KnowledgeFiles(Record, frozen=True):
    """Every knowledge file of a directory, read and checked, files and cross-references alike: what
    :mod:`hvci.knowledge.cache` keeps between runs. ``remediations`` (by file name) is filled only for the
    cache; an uncached load reads a remediation file when it is first shown."""

    categories: CategoriesFile
    verifier: VerifierFile
    subcodes: SubcodesFile
    bugchecks: BugChecksFile
    constants: dict[str, ConstantTable]
    apis: ApisFile
    events: EventsFile
    rules: RulesFile
    triage: Triage
    remediations: dict[str, Remediation] = msgspec.field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ reading


def _toml(path: "str | Path") -> dict[str, Any]:
    import tomllib  # here: a start from the cache (hvci.knowledge.cache) parses no TOML

    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise KnowledgeError(f"{path}: knowledge file is missing") from None
    except tomllib.TOMLDecodeError as error:
        raise KnowledgeError(f"{os.path.basename(path)}: not valid TOML: {error}") from None


def read(path: "str | Path", kind: type[T]) -> T:
    """The file at ``path`` as a ``kind`` record."""
    return convert(_toml(path), kind, os.path.basename(path))


def read_constants(path: "Path") -> dict[str, ConstantTable]:
    """constants.toml: one table per kind of value, under its own name."""
    tables = {}
    for key, table in _toml(path).items():
        converted = convert(table, ConstantTable, path.name, key)
        tables[key] = msgspec.structs.replace(converted, key=key)
    return tables


#: Remediations by file path: read when a category's remediation is first shown, or given by the cache.
_REMEDIATIONS: dict[str, Remediation] = {}


def read_remediation(path: str) -> Remediation:
    """The remediation file at ``path``, read once per process."""
    remediation = _REMEDIATIONS.get(path)
    if remediation is None:
        remediation = _REMEDIATIONS[path] = read(path, Remediation)
    return remediation


def remember_remediations(remediations: Mapping[str, Remediation]) -> None:
    """Remediations already read and checked (by path), so that showing one reads no file."""
    _REMEDIATIONS.update(remediations)


def convert(data: Any, kind: type[T], file: str, prefix: str = "") -> T:
    """``data`` as ``kind``, or a :class:`KnowledgeError` naming ``file`` and the key path."""
    if not isinstance(data, dict):
        raise KnowledgeError(f"{file}: {prefix or 'file'}: expected a table, got {data!r}")
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as error:
        raise KnowledgeError(_located(str(error), kind, file, prefix)) from None


# (patterns compiled by the first mistake, through ``re``'s cache: a knowledge base without one needs none)
_AT = r"^(?P<message>.*) - at `\$(?P<path>[^`]*)`$"
_OURS = r"^(?P<key>[a-z_]+(?:\[\d+\])?(?:\.[a-z_]+)*): (?P<message>.*)$"


def _located(text: str, kind: type[Any], file: str, prefix: str) -> str:
    """msgspec's error (``Expected `int`, got `str` - at `$.api[0].argument_index```) in our words:
    ``apis.toml: api[0].argument_index: expected `int`, got `str```."""
    match = re.match(_AT, text, re.DOTALL)
    message, path = (match["message"], match["path"].lstrip(".")) if match else (text, "")
    if found := re.match(r"Object contains unknown field `(.+)`", message):
        path, message = _join(path, found[1]), "unknown key"
    elif found := re.match(r"Object missing required field `(.+)`", message):
        path, message = _join(path, found[1]), "missing"
    elif found := re.match(r"Invalid enum value (.+)", message):
        allowed = _allowed(kind, path)
        message = f"{found[1]} is not one of {', '.join(map(str, allowed))}" if allowed else message
    elif found := re.match(_OURS, message, re.DOTALL):  # a __post_init__'s ValueError: "key: what is wrong"
        path, message = _join(path, found["key"]), found["message"]
    else:
        message = message[:1].lower() + message[1:]
    return f"{file}: {_join(prefix, path) or 'file'}: {message}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path and key else path or key


def _allowed(kind: type[Any], path: str) -> tuple[Any, ...]:
    """The values of the ``Literal`` at ``path`` in ``kind`` (for an error message)."""
    info: Any = msgspec.inspect.type_info(kind)
    for step in re.findall(r"[a-z_]+|\[\d+\]", path):
        while isinstance(info, msgspec.inspect.UnionType | msgspec.inspect.VarTupleType):
            info = (
                info.item_type
                if isinstance(info, msgspec.inspect.VarTupleType)
                else next(t for t in info.types if not isinstance(t, msgspec.inspect.NoneType))
            )
        if step.startswith("["):
            if isinstance(info, msgspec.inspect.TupleType):
                info = info.item_types[int(step[1:-1])]
            continue
        if not isinstance(info, msgspec.inspect.StructType):
            return ()
        info = next((f.type for f in info.fields if f.encode_name == step), None)
    return tuple(info.values) if isinstance(info, msgspec.inspect.LiteralType) else ()
