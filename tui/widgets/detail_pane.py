"""Everything about the selected finding: verdict, parameters, caller, stack, evidence, fix, commands.

Text that came from the input (titles, symbols, evidence lines, detail values) is shown through
:mod:`tui.safe_text`; only the knowledge base's own remediation prose is rendered as Markdown, and its
before/after code is shown verbatim in :class:`~rich.syntax.Syntax` blocks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Group, RenderableType
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import ScrollableContainer, VerticalScroll
from textual.widgets import Static

from hvci.details import NO_CRASH_DETAILS, CrashDetails, details_json
from hvci.findings import Finding
from hvci.knowledge import kb
from hvci.model import Incident
from hvci.report.windbg import commands_for
from tui.labels import category_label, span_label, where_label
from tui.safe_text import clean
from tui.widgets.stack_view import StackView

if TYPE_CHECKING:
    from rich.syntax import Syntax

#: Returns the text of line ``n`` of input ``path`` if it has been read (for evidence lines).
LineLookup = Callable[[str, int], str | None]

#: How many lines of each evidence span are quoted in the pane (the evidence view shows them all).
QUOTED_LINES = 3

_CONFIDENCE_WORDS = {
    "certain": "certain: independent pieces of evidence agree, or one that cannot mean anything else",
    "likely": "likely: one strong piece of evidence",
    "possible": "possible: a weak hint only (a number alone, a heuristic); check the evidence",
    "none": "not HVCI-related",
}


#: Detail keys whose numbers people know in decimal (Event Viewer shows event 3087, not 0xc0f).
DECIMAL_KEYS = frozenset({"event_id", "count", "index", "lines", "pid", "tid", "process_id", "thread_id"})


def _number(value: Any) -> str:
    return f"0x{value:x}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _meaning(text: str) -> str:
    """An argument's meaning from the bug-check table; a bare number there is the value it always has."""
    stripped = text.strip()
    if stripped and all(c in "0123456789abcdefABCDEFx" for c in stripped):
        return f"reserved (always {stripped})"
    return stripped


def _value_text(value: Any, key: str = "") -> str:
    """A detail value in words: ``0x40 = PAGE_EXECUTE_READWRITE (executable); use 0x4 = PAGE_READWRITE``."""
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "—"}[value]
    if isinstance(value, int):
        return str(value) if key in DECIMAL_KEYS or value <= 9 else _number(value)
    if isinstance(value, Mapping):
        if "value" in value and "name" in value:
            text = f"{_value_text(value['value'])} = {value['name']}"
            executable = value.get("executable")
            if executable is True:
                text += " (executable)"
            elif executable is False:
                text += " (no-execute)"
            if value.get("parts"):
                text += f"  [{' | '.join(str(p) for p in value['parts'])}]"
            safe_value = value.get("safe_value")
            if isinstance(safe_value, Mapping) and "value" in safe_value:
                text += f"; use {_value_text(safe_value['value'])} = {safe_value.get('name', '')}"
            if value.get("note"):
                text += f"; {value['note']}"
            return text
        return ", ".join(f"{k}: {_value_text(v, k)}" for k, v in value.items() if v is not None)
    if isinstance(value, list | tuple):
        return ", ".join(_value_text(v, key) for v in value)
    return str(value)


def parameters_text(incident: Incident) -> Text:
    """The bug check and its arguments with their meanings, then the decoded details."""
    text = Text(end="")
    check = incident.bugcheck
    crash = incident.details if isinstance(incident.details, CrashDetails) else NO_CRASH_DETAILS
    details = details_json(incident.details)
    details.pop("subcode", None)
    details.pop("arguments", None)
    if check is not None:
        text.append(f"Bug check 0x{check.code:X} {clean(check.name or '')}\n", "bold")
        subcode = crash.subcode
        if subcode is not None:
            text.append(f"  Arg1  {_number(subcode.value)}  ", "")
            text.append(f"{clean(subcode.meaning)}{clean(f' ({subcode.era})')}\n", "dim")
        if crash.arguments is not None:
            for argument in crash.arguments:
                text.append(f"  Arg{argument.index}  {_number(argument.value)}  ", "")
                text.append(f"{clean(_meaning(argument.meaning or ''))}\n", "dim")
        elif subcode is None:
            for number, arg in enumerate(check.args, start=1):
                text.append(f"  Arg{number}  0x{arg:x}\n")
    for key, value in details.items():
        text.append(f"{key.replace('_', ' ')}: ", "bold")
        text.append(clean(_value_text(value, key)) + "\n")
    if not text.plain:
        text.append("(no parameters in the input)", "dim")
    text.rstrip()
    return text


def verdict_text(incident: Incident) -> Text:
    text = Text(end="")
    label = category_label(incident)
    text.append(clean(label), "bold red" if incident.hvci_related else "bold")
    text.append(f"   confidence {incident.confidence}", "yellow")
    text.append(f"   ×{incident.count}\n" if incident.count > 1 else "\n", "")
    text.append(clean(incident.title) + "\n")
    category = kb.load().categories.get(incident.category) if incident.category else None
    if category is not None:
        text.append(clean(category.summary) + "\n", "italic")
    elif not incident.hvci_related:
        text.append("Not an HVCI problem; listed so that nothing in the input is silently dropped.\n", "dim")
    text.append(f"Confidence: {_CONFIDENCE_WORDS.get(incident.confidence, incident.confidence)}\n", "dim")
    span = incident.source
    text.append(f"Source: {clean(span_label(span.path, span.first_line, span.last_line))}", "dim")
    return text


def caller_text(incident: Incident) -> Text:
    caller = incident.caller
    if caller is None:
        return Text("(the input gives no code address for this incident)", style="dim", end="")
    text = Text(end="")
    where = where_label(caller)
    if caller.address is not None and not where.startswith(f"0x{caller.address:x}"):
        text.append(f"0x{caller.address:x}  ")
    text.append(clean(where), "bold")
    text.append(f"\nresolved by: {caller.resolved_by}", "dim")
    if caller.inlined:
        text.append("\ninlined: " + clean(" ← ".join(caller.inlined)), "dim")
    if caller.note:
        text.append("\n" + clean(caller.note), "yellow")
    return text


def evidence_text(incident: Incident, line_at: LineLookup) -> Group:
    """Each reason with its ``path:line`` and the first lines it points at (cut, not wrapped)."""
    parts: list[Text] = []
    quoted: set[tuple[str, int, int]] = set()
    for evidence in incident.evidence:
        marker = {"deciding": "■", "conflicting": "✗"}.get(evidence.weight, "·")
        reason = Text(
            f"{marker} {clean(evidence.reason)}", style="bold" if evidence.weight == "deciding" else ""
        )
        parts.append(reason)
        span = evidence.span
        if span is None:
            continue
        reason.append(f"  {clean(span_label(span.path, span.first_line, span.last_line))}", "cyan")
        key = (span.path, span.first_line, span.last_line)
        if key in quoted:  # the same lines were just quoted for an earlier reason
            continue
        quoted.add(key)
        last = min(span.last_line, span.first_line + QUOTED_LINES - 1)
        for number in range(span.first_line, last + 1):
            line = line_at(span.path, number)
            if line is not None:
                quote = Text(f"{number:>7} │ ", style="dim", no_wrap=True, overflow="ellipsis")
                quote.append(clean(line[:500]), "not dim")
                parts.append(quote)
    if not incident.evidence:
        parts.append(Text("(the engine recorded no evidence for this incident)", style="dim"))
    return Group(*parts)


def occurrences_text(finding: Finding) -> Text:
    """Where a repeated finding was seen: one line per occurrence, in input order."""
    text = Text(end="")
    text.append(f"{finding.count} reports in {len(finding.occurrences)} places; bucket ", "dim")
    text.append(clean(finding.bucket) + "\n", "dim")
    for occurrence in finding.occurrences:
        span = occurrence.source
        text.append(f"  {clean(span_label(span.path, span.first_line, span.last_line))}", "cyan")
        if occurrence.count > 1:
            text.append(f"  ×{occurrence.count}")
        if occurrence.timestamp:
            text.append(f"  {clean(occurrence.timestamp)}", "dim")
        text.append("\n")
    text.rstrip()
    return text


def _plain_code(source: str) -> Text:
    """C code as :func:`_code` shows it, without the highlighting."""
    return Text(source.rstrip("\n"), no_wrap=True, overflow="ignore", end="")


def _code(source: str) -> Syntax:
    """C code at its own width: never wrapped, the block scrolls sideways instead."""
    from rich.syntax import Syntax  # with the Markdown renderer, ~60 ms of imports the first frame skips

    lines = source.rstrip("\n").splitlines() or [""]
    return Syntax(source.rstrip("\n"), "c", word_wrap=False, code_width=max(len(line) for line in lines))


#: Set once :func:`warm_up_detail` has loaded the Markdown renderer and the C highlighter.
RENDERERS_LOADED = threading.Event()


def warm_up_detail() -> None:
    """Load the knowledge base, the C highlighter and the Markdown renderer ahead of the first finding
    shown (not before the view's first frame: they are imported here, in the warm-up thread)."""
    import rich.markdown  # noqa: F401

    kb.load()
    _ = _code("").lexer
    RENDERERS_LOADED.set()


def windbg_text(incident: Incident) -> Text:
    commands, reason = commands_for(incident)
    text = Text(end="")
    for command in commands:
        text.append(command.text, "bold green")
        text.append(f"   {command.purpose}\n", "dim")
    if reason:
        text.append(reason + "\n", "yellow")
    if not commands:
        text.append("(no address or driver name to build commands from)", "dim")
    else:
        text.append("w copies these commands", "dim")
    return text


def links_text(links: Sequence[Any]) -> Text:
    """Each source's title, then its URL on a line of its own, never wrapped (a terminal must see the whole
    URL to open it) and marked as a hyperlink (OSC 8) for terminals that support them."""
    text = Text(end="", no_wrap=True, overflow="ignore")
    for link in links:
        text.append(f"{link.title}\n", "bold")
        text.append("  ")
        text.append(link.url, Style(underline=True, color="cyan", link=link.url))
        text.append("\n")
    text.rstrip()
    return text


class CodeBlock(ScrollableContainer, can_focus=False):
    """Text that must not wrap (code, URLs): as wide as its longest line, scrolled sideways when wider."""

    DEFAULT_CSS = """
    CodeBlock { height: auto; overflow-x: auto; overflow-y: hidden; }
    CodeBlock > Static { width: auto; height: auto; }
    """

    def __init__(self, content: Static | None = None, *, id: str, classes: str = "") -> None:  # noqa: A002
        self.body = content or Static(id=f"{id}-text")
        """The text, updated before it is mounted as readily as after (the pane fills a block it just
        mounted)."""
        super().__init__(self.body, id=id, classes=classes)

    def update(self, renderable: RenderableType) -> None:
        self.body.update(renderable)


class DetailPane(VerticalScroll, can_focus=True):
    """The selected finding in full; :meth:`show` refreshes every section."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "scroll_down", "Down", show=False, id="detail.down"),
        Binding("k,up", "scroll_up", "Up", show=False, id="detail.up"),
        Binding("h,left", "code_left", "Left", show=False, id="detail.left", tooltip="Scroll code left"),
        Binding("l,right", "code_right", "Right", show=False, id="detail.right", tooltip="Scroll code right"),
        Binding("space,pagedown,ctrl+d", "page_down", "Page down", show=False, id="detail.page_down"),
        Binding("b,pageup,ctrl+u", "page_up", "Page up", show=False, id="detail.page_up"),
        Binding("g,home", "scroll_home", "Top", show=False, id="detail.top"),
        Binding("G,end", "scroll_end", "Bottom", show=False, id="detail.bottom"),
    ]

    DEFAULT_CSS = """
    DetailPane { padding: 0 1; }
    DetailPane .heading { text-style: bold; color: $accent; margin-top: 1; }
    DetailPane .code-label { color: $text-muted; margin-top: 1; }
    DetailPane .code { background: $boost; padding: 0 1; }
    """

    def _code_blocks(self) -> list[CodeBlock]:
        return list(self.query(CodeBlock))

    def action_code_left(self) -> None:
        for block in self._code_blocks():
            block.scroll_relative(x=-8, animate=False)

    def action_code_right(self) -> None:
        for block in self._code_blocks():
            block.scroll_relative(x=8, animate=False)

    def compose(self) -> ComposeResult:
        yield Static(id="verdict")

    _has_sections = False
    _stack: StackView

    def _mount_sections(self) -> bool:
        """The sections of a finding join the pane with the first finding shown: until then it is its message
        alone. They are half of the view's widgets; their styles, layout and paint were ~35 ms of the view's
        start-up, before its first finding could be drawn. False when the app is closing (nothing mounts)."""
        if self._has_sections:
            return True
        self._stack = StackView(id="stack")
        sections = [
            Static("Occurrences", classes="heading", id="occurrences-heading"),
            Static(id="occurrences"),
            Static("Parameters", classes="heading finding"),
            Static(id="parameters", classes="finding"),
            Static("Caller", classes="heading finding"),
            Static(id="caller", classes="finding"),
            Static("Stack", classes="heading finding"),
            CodeBlock(self._stack, id="stack-block", classes="finding"),
            Static("Evidence", classes="heading finding"),
            Static(id="evidence", classes="finding"),
            Static("Fix", classes="heading", id="fix-heading"),
            Static(id="fix"),
            Static("Before", classes="code-label", id="before-label"),
            CodeBlock(id="before", classes="code"),
            Static("After", classes="code-label", id="after-label"),
            CodeBlock(id="after", classes="code"),
            Static(id="verify"),
            Static("WinDbg", classes="heading finding"),
            Static(id="windbg", classes="finding"),
            Static("Sources", classes="heading", id="links-heading"),
            CodeBlock(id="links"),
        ]
        self.mount_all(sections)
        self._has_sections = sections[0].parent is self
        return self._has_sections

    renderers_coming = False
    """Set by a view that loads the renderers in a thread (:func:`warm_up_detail`): until they are loaded, a
    remediation is shown as its plain text, and again rendered by :meth:`renderers_loaded`. Importing them
    on the UI thread for the first finding shown took ~40 ms (markdown_it, pygments) of a key pressed then,
    for a section below the pane's first screenful."""

    _plain_remediation: Any = None

    def on_mount(self) -> None:
        self.clear()

    def watch_has_focus(self, _has_focus: bool) -> None:
        """Restyle the pane alone when it gains or loses focus (``d``, ``v``, Tab): no rule styles its
        sections by the pane's focus, and re-applying the stylesheet to all of them (Textual's default) was
        a third of a tab switch's work."""
        self.app.stylesheet.update_nodes([self], animate=True)

    def renderers_loaded(self) -> None:
        """The Markdown renderer and the highlighter are loaded: render a remediation shown as plain text."""
        remediation, self._plain_remediation = self._plain_remediation, None
        if remediation is not None and self._has_sections:
            self._show_remediation(remediation)

    def clear(self, message: Text | None = None) -> None:
        """No finding selected; ``message`` says why (nothing found yet, filtered out, unreadable input)."""
        self.query_one("#verdict", Static).update(message or Text("No finding selected.", style="dim"))
        if not self._has_sections:
            return
        self.show_occurrences(None)
        for name in ("parameters", "caller", "evidence", "windbg"):
            self.query_one(f"#{name}", Static).update("")
        for block in self._code_blocks():
            block.update("")
        self._stack.update("")
        self.query_one("#stack-block", CodeBlock).scroll_to(x=0, animate=False)
        self._show_remediation(None)
        self._sections(False)

    def _sections(self, shown: bool) -> None:
        """The sections of a finding, hidden while there is none (the message alone says why)."""
        for widget in self.query(".finding"):
            widget.display = shown

    def show(self, incident: Incident, line_at: LineLookup, finding: Finding | None = None) -> None:
        if not self._mount_sections():
            return
        self._sections(True)
        self.query_one("#verdict", Static).update(verdict_text(incident))
        self.show_occurrences(finding)
        self.query_one("#parameters", Static).update(parameters_text(incident))
        self.query_one("#caller", Static).update(caller_text(incident))
        self._stack.show(incident.stack, incident.caller, incident.driver)
        self.query_one("#evidence", Static).update(evidence_text(incident, line_at))
        self.query_one("#windbg", Static).update(windbg_text(incident))
        category = kb.load().categories.get(incident.category) if incident.category else None
        self._show_remediation(category.remediation if category is not None else None)
        self.scroll_home(animate=False)

    _occurrences_shown: Text | None | bool = False  # (nothing shown yet: not even "no occurrences")

    def show_occurrences(self, finding: Finding | None) -> None:
        """Where the shown finding was seen, updated alone as repeats arrive while the input loads (the rest
        of the pane stays: redrawing it all for each repeat would lay out the whole pane again)."""
        if not self._has_sections:
            return
        repeated = finding is not None and len(finding.occurrences) > 1
        text = occurrences_text(finding) if finding is not None and repeated else None
        if text == self._occurrences_shown:
            return
        self._occurrences_shown = text
        self.query_one("#occurrences-heading").display = repeated
        self.query_one("#occurrences").display = repeated
        if text is not None:
            self.query_one("#occurrences", Static).update(text)

    def _show_remediation(self, remediation: Any) -> None:
        fix = self.query_one("#fix", Static)
        verify = self.query_one("#verify", Static)
        present = remediation is not None
        for name in ("fix-heading", "fix", "verify", "links-heading", "links"):
            self.query_one(f"#{name}").display = present
        before = bool(present and remediation.before)
        after = bool(present and remediation.after)
        for name, shown in (
            ("before-label", before),
            ("before", before),
            ("after-label", after),
            ("after", after),
        ):
            self.query_one(f"#{name}").display = shown
        self._plain_remediation = None
        if not present:
            return
        parts = [p for p in (remediation.what, remediation.why, remediation.fix) if p]
        verify_text = f"**Verify:** {remediation.verify}" if remediation.verify else ""
        if self.renderers_coming and not RENDERERS_LOADED.is_set():
            self._plain_remediation = remediation
            fix.update(Text("\n\n".join(parts)))
            verify.update(Text(verify_text))
            code: Callable[[str], RenderableType] = _plain_code
        else:
            from rich.markdown import Markdown as RichMarkdown  # see warm_up_detail

            fix.update(RichMarkdown("\n\n".join(parts)))
            verify.update(RichMarkdown(verify_text) if verify_text else "")
            code = _code
        if before:
            self.query_one("#before", CodeBlock).update(code(remediation.before))
        if after:
            self.query_one("#after", CodeBlock).update(code(remediation.after))
        self.query_one("#links", CodeBlock).update(links_text(remediation.links))
        for block in self._code_blocks():
            block.scroll_to(x=0, animate=False)
