"""A broken knowledge file names its file and key: every kind of mistake the records and the cross-file
checks catch, on a copy of the shipped files with one edit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hvci.knowledge import kb
from tests.hvci.test_kb import OTHERS, SEVEN


@pytest.fixture()
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(kb.KNOWLEDGE_DIR, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_copy_loads(copy: Path) -> None:
    assert tuple(kb.load_from(copy).categories) == SEVEN + OTHERS


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "apis.toml",
            'category = "execute-pool-type"',
            'category = "execute-pool-typo"',
            r"apis\.toml: api\[0\]\.category: unknown category 'execute-pool-typo'",
        ),
        (
            "apis.toml",
            "argument_index = 0",
            'argument_index = "0"',
            r"apis\.toml: api\[0\]\.argument_index: expected",
        ),
        (
            "apis.toml",
            'argument_kind = "pool-type"',
            'argument_kind = "pooltype"',
            r"apis\.toml: api\[0\]\.argument_kind: 'pooltype' is not one of",
        ),
        (
            "apis.toml",
            'argument_index = 3\nargument_kind = "lookaside-flags"',
            'argument_index = 7\nargument_kind = "lookaside-flags"',
            r"argument_index: 7 is outside the 7",
        ),
        (
            "categories.toml",
            'short = "EPT"',
            'shrt = "EPT"',
            r"categories\.toml: category\[0\]\.shrt: unknown key",
        ),
        ("categories.toml", 'short = "EPT"\n', "", r"categories\.toml: category\[0\]\.short: missing"),
        (
            "categories.toml",
            'remediation = "execute-pool-type.toml"',
            'remediation = "nope.toml"',
            r"categories\.toml: category\[0\]\.remediation: file 'nope.toml' not found",
        ),
        ("categories.toml", 'id = "section-alignment"', 'id = "section_alignment"', r"is not kebab-case"),
        (
            "subcodes.toml",
            'era = "older-build"',
            'era = "old"',
            r"subcodes\.toml: subcode\[\d+\]\.era: 'old'",
        ),
        (
            "subcodes.toml",
            'banner_issues = ["iat"]',
            'banner_issues = ["iat-typo"]',
            r"no banner_format with issue 'iat-typo'",
        ),
        (
            "constants.toml",
            'name = "NonPagedPoolNx"',
            'name = "NonPagedPool"',
            r"constants\.toml: pool_type\.entry\[\d+\]\.name: duplicate constant name 'NonPagedPool'",
        ),
        (
            "constants.toml",
            'replacement = "PAGE_READWRITE"',
            'replacement = "PAGE_READWRIT"',
            r"'PAGE_READWRIT' is not a constant of \[page_protection\]",
        ),
        (
            "verifier.toml",
            'label = "Execute Pool Type Count"',
            'label = "Execute Pool Typ Count"',
            r"counter label 'Execute Pool Type Count' is not a \[\[counter\]\]",
        ),
        (
            "verifier.toml",
            'fields = ["caller", "value", "tag"]',
            'fields = ["caller", "value"]',
            r"verifier\.toml: banner_format\[1\]\.fields: 2 field names for 3 conversions",
        ),
        (
            "bugchecks.toml",
            'category = "execute-nx-memory"',
            'category = ""',
            r"bugchecks\.toml: bugcheck\[\d+\]\.hvci_related: must be true exactly when",
        ),
        ("events.toml", "id = 3073", "id = 3072", r"events\.toml: event\[\d+\]\.id: duplicate event id 3072"),
        (
            "apis.toml",
            "safe_when = { argument_index = 1, value = 1, bits = 8,",
            "safe_when = { argument_index = 5, value = 1, bits = 8,",
            r"safe_when: names another argument than the deciding one",
        ),
        (
            "apis.toml",
            "safe_when = { argument_index = 1, value = 1, bits = 8,",
            "safe_when = { argument_index = 1, value = 256, bits = 8,",
            r"apis\.toml: api\[\d+\]\.safe_when\.value: 256 does not fit in 8 bits",
        ),
        ("categories.toml", "[[category]]", "[[category]\n", r"categories\.toml: not valid TOML"),
        ("constants.toml", "width = 32", "width = 8", r"constants\.toml: pool_type\.width: 8 is not one"),
        ("rules.toml", 'level = "note"', 'level = "info"', r"rules\.toml: rule\[1\]\.level: 'info' is not"),
        ("verifier.toml", "bit = 25", "bit = 24", r"verifier\.toml: flag\.bit: bit 24 does not match"),
        (
            "triage.toml",
            "argument = 4",
            "argument = 5",
            r"triage\.toml: fault\[0\]\.argument: 5 is not one of",
        ),
        (
            "triage.toml",
            'url = "https://',
            'url = "http://',
            r"triage\.toml: fault\[0\]\.url: .* is not an https",
        ),
    ],
)
def test_a_broken_file_names_the_file_and_key(
    copy: Path, file: str, old: str, new: str, message: str
) -> None:
    _edit(copy / file, old, new)
    with pytest.raises(kb.KnowledgeError, match=message):
        kb.load_from(copy)


def test_a_missing_file_is_named(copy: Path) -> None:
    (copy / "apis.toml").unlink()
    with pytest.raises(kb.KnowledgeError, match=r"apis\.toml: knowledge file is missing"):
        kb.load_from(copy)


def test_a_broken_remediation_file_is_named_when_read(copy: Path) -> None:
    _edit(copy / "remediation" / "secure-fault.toml", 'url = "https://learn', 'url = "http://learn')
    base = kb.load_from(copy)
    with pytest.raises(
        kb.KnowledgeError, match=r"secure-fault\.toml: link\[0\]\.url: .* is not an https URL"
    ):
        _ = base.categories["secure-fault"].remediation


def test_triage_knowledge_loads_and_names_a_broken_key(tmp_path: Path) -> None:
    from hvci.knowledge import triage
    from hvci.knowledge.files import read

    assert triage.load().fault_argument(0x0A, (1, 2, 3, 0xFFFFF80012345678)) is not None
    broken = tmp_path / "triage.toml"
    text = (kb.KNOWLEDGE_DIR / "triage.toml").read_text(encoding="utf-8")
    broken.write_text(text.replace("argument = 4", "argument = 5", 1), encoding="utf-8")
    with pytest.raises(kb.KnowledgeError, match=r"triage\.toml: fault\[0\]\.argument: 5 is not one of 1, 2"):
        read(broken, triage.Triage)
