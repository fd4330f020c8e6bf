"""Everything about the selected finding: verdict, parameters, caller, stack, evidence, fix, commands.

Text that came from the input (titles, symbols, evidence lines, detail values) is shown through
:mod:`tui.safe_text`; only the knowledge base's own remediation prose is rendered as Markdown, and its
before/after code is shown verbatim in :class:`~rich.syntax.Syntax` blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Markdown, Static

from hvci.knowledge import kb
from hvci.model import Incident
from hvci.report.windbg import commands_for
from tui.labels import category_label, span_label, where_label
from tui.safe_text import clean
from tui.widgets.stack_view import StackView

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


def _number(value: Any) -> str:
    return f"0x{value:x}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _value_text(value: Any) -> str:
    """A detail value in words: ``0x40 = PAGE_EXECUTE_READWRITE (executable); use 0x4 = PAGE_READWRITE``."""
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "—"}[value]
    if isinstance(value, int):
        return _number(value) if value > 9 else str(value)
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
        return ", ".join(f"{k}: {_value_text(v)}" for k, v in value.items() if v is not None)
    if isinstance(value, list | tuple):
        return ", ".join(_value_text(v) for v in value)
    return str(value)


def parameters_text(incident: Incident) -> Text:
    """The bug check and its arguments with their meanings, then the decoded details."""
    text = Text(end="")
    check = incident.bugcheck
    details = dict(incident.details)
    if check is not None:
        text.append(f"Bug check 0x{check.code:X} {clean(check.name or '')}\n", "bold")
        subcode = details.pop("subcode", None)
        if isinstance(subcode, Mapping):
            era = f" ({subcode['era']})" if subcode.get("era") else ""
            text.append(f"  Arg1  {_number(subcode.get('value'))}  ", "")
            text.append(f"{clean(str(subcode.get('meaning') or ''))}{clean(era)}\n", "dim")
        arguments = details.pop("arguments", None)
        if isinstance(arguments, list):
            for argument in arguments:
                text.append(f"  Arg{argument.get('index')}  {_number(argument.get('value'))}  ", "")
                text.append(f"{clean(str(argument.get('meaning') or ''))}\n", "dim")
        elif not isinstance(subcode, Mapping):
            for number, value in enumerate(check.args, start=1):
                text.append(f"  Arg{number}  0x{value:x}\n")
    for key, value in details.items():
        text.append(f"{key.replace('_', ' ')}: ", "bold")
        text.append(clean(_value_text(value)) + "\n")
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
    if caller.address is not None:
        text.append(f"0x{caller.address:x}  ")
    text.append(clean(where_label(caller)), "bold")
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
    text.append("w copies these commands", "dim")
    return text


class DetailPane(VerticalScroll, can_focus=True):
    """The selected finding in full; :meth:`show` refreshes every section."""

    DEFAULT_CSS = """
    DetailPane { padding: 0 1; }
    DetailPane .heading { text-style: bold; color: $accent; margin-top: 1; }
    DetailPane .code-label { color: $text-muted; margin-top: 1; }
    DetailPane .code { background: $boost; padding: 0 1; height: auto; }
    DetailPane Markdown { margin: 0; padding: 0; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="verdict")
        yield Static("Parameters", classes="heading")
        yield Static(id="parameters")
        yield Static("Caller", classes="heading")
        yield Static(id="caller")
        yield Static("Stack", classes="heading")
        yield StackView(id="stack")
        yield Static("Evidence", classes="heading")
        yield Static(id="evidence")
        yield Static("Fix", classes="heading", id="fix-heading")
        yield Markdown(id="fix")
        yield Static("Before", classes="code-label", id="before-label")
        yield Static(id="before", classes="code")
        yield Static("After", classes="code-label", id="after-label")
        yield Static(id="after", classes="code")
        yield Markdown(id="verify")
        yield Static("WinDbg", classes="heading")
        yield Static(id="windbg")
        yield Static("Sources", classes="heading", id="links-heading")
        yield Static(id="links")

    def on_mount(self) -> None:
        self.clear()

    def clear(self) -> None:
        """No finding selected."""
        self.query_one("#verdict", Static).update(Text("No finding selected.", style="dim"))
        for name in ("parameters", "caller", "evidence", "windbg", "links", "before", "after"):
            self.query_one(f"#{name}", Static).update("")
        self.query_one("#stack", StackView).update("")
        self._show_remediation(None)

    def show(self, incident: Incident, line_at: LineLookup) -> None:
        self.query_one("#verdict", Static).update(verdict_text(incident))
        self.query_one("#parameters", Static).update(parameters_text(incident))
        self.query_one("#caller", Static).update(caller_text(incident))
        self.query_one("#stack", StackView).show(incident.stack, incident.caller, incident.driver)
        self.query_one("#evidence", Static).update(evidence_text(incident, line_at))
        self.query_one("#windbg", Static).update(windbg_text(incident))
        category = kb.load().categories.get(incident.category) if incident.category else None
        self._show_remediation(category.remediation if category is not None else None)
        self.scroll_home(animate=False)

    def _show_remediation(self, remediation: Any) -> None:
        fix = self.query_one("#fix", Markdown)
        verify = self.query_one("#verify", Markdown)
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
        if not present:
            return
        parts = [p for p in (remediation.what, remediation.why, remediation.fix) if p]
        fix.update("\n\n".join(parts))
        verify.update(f"**Verify:** {remediation.verify}" if remediation.verify else "")
        if before:
            self.query_one("#before", Static).update(Syntax(remediation.before, "c", word_wrap=False))
        if after:
            self.query_one("#after", Static).update(Syntax(remediation.after, "c", word_wrap=False))
        links = Text(end="")
        for link in remediation.links:
            links.append(f"{link.title}\n", "bold")
            links.append(f"  {link.url}\n", "underline cyan")
        links.rstrip()
        self.query_one("#links", Static).update(links)
