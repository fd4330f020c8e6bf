"""The triage app and its one factory, :func:`make_app`, used by the command line and by the tests.

The app owns what outlives a screen: the analysis options (symbol path, image folders), exports, the
clipboard, and the key map. All analysis happens in the engine through a :class:`tui.loading.Feed`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import ClassVar

from msgspec.structs import replace
from textual.app import App
from textual.binding import Binding, BindingType

from hvci.logs.pipeline import AnalyzeOptions
from hvci.model import Report
from hvci.report import incident_markdown, render
from hvci.report.windbg import commands_text
from parsers.records import InputInfo
from tui.commands import TriageCommands
from tui.engine_feed import PipelineFeed
from tui.keymap import load_keymap
from tui.loading import Feed, Load, Source
from tui.screens.triage import TriageScreen
from tui.settings import ViewSettings, load_settings, save_settings, settings_path
from tui.widgets.detail_pane import DetailPane
from tui.widgets.evidence_log import EvidenceLog
from tui.widgets.findings_table import FindingsTable

#: File suffix of each export format.
SUFFIX = {"json": "json", "jsonl": "jsonl", "sarif": "sarif", "markdown": "md", "html": "html", "text": "txt"}

#: A copy also lands in a file, for terminals without OSC 52 (macOS Terminal, some multiplexers): a new
#: private (0600), randomly named file created exclusively in the temp folder, so that nobody can predict it,
#: plant a link there, or read it.
CLIPBOARD_PREFIX = "hvci-triage-clipboard-"

FeedFactory = Callable[[AnalyzeOptions], Feed]


class TriageApp(App[None]):
    """hvci-triage's interactive view."""

    CSS_PATH = "triage.tcss"
    TITLE = "hvci-triage"
    COMMANDS = App.COMMANDS | {TriageCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "q", "back_or_quit", "Back/Quit", id="app.quit", tooltip="Back one level; quits from the list"
        ),
        Binding("Q", "quit", "Quit", show=False, id="app.quit_now", tooltip="Quit at once, from anywhere"),
        Binding("question_mark,f1", "help", "Help", id="app.help"),
    ]

    def __init__(
        self,
        sources: Sequence[Source] = (),
        *,
        options: AnalyzeOptions | None = None,
        follow: bool = False,
        feed_factory: FeedFactory = PipelineFeed,
        export_dir: Path | None = None,
        keymap: dict[str, str] | None = None,
        keymap_problem: str | None = None,
        settings_file: Path | None = None,
    ) -> None:
        super().__init__()
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            # The view moves when a key is hit. An animated tab underline re-draws the screen for a third
            # of a second after each tab switch: CPU taken from a large input's loaders, frames that keys
            # wait behind. TEXTUAL_ANIMATIONS=full brings animations back.
            self.animation_level = "none"
        self.sources = list(sources)
        self.options = options or AnalyzeOptions()
        self.follow = follow
        self.feed_factory = feed_factory
        self.export_dir = export_dir or Path.cwd()
        self.keymap = dict(keymap or {})
        self._keymap_problem = keymap_problem
        self.settings_file = settings_file or settings_path()
        self._clipboard_file: Path | None = None
        self.triage = TriageScreen(
            feed_factory(self.options),
            self.sources,
            follow=follow,
            settings=load_settings(self.settings_file),
        )

    def get_default_screen(self) -> TriageScreen:
        return self.triage

    def on_mount(self) -> None:
        if self.keymap:
            self.set_keymap(self.keymap)
        if self._keymap_problem:
            self.notify(self._keymap_problem, severity="warning", markup=False)
        if not self.sources:
            self.action_paste()

    # -- navigation ---------------------------------------------------------------------------------------

    def action_back_or_quit(self) -> None:
        """``q``: back one level (close the view on top, the search, a zoomed pane, return to the list); quit
        only from the top (lnav, k9s). ``Q`` quits at once."""
        if self.screen is not self.triage:
            self.pop_screen()
        elif not self.triage.back():
            self.exit()

    def remember_settings(self, settings: ViewSettings) -> None:
        problem = save_settings(self.settings_file, settings)
        if problem:
            self.notify(problem, severity="warning", markup=False)

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen
        from tui.screens.paste import PasteScreen

        owners = [
            ("app", TriageApp),
            ("main", TriageScreen),
            ("findings", FindingsTable),
            ("detail", DetailPane),
            ("evidence", EvidenceLog),
            ("paste", PasteScreen),
        ]
        self.push_screen(HelpScreen(owners, self.keymap))

    def action_paste(self) -> None:
        from tui.screens.paste import PasteScreen  # a text area: ~15 ms the first frame does without

        def analyse(text: str | None) -> None:
            if text is not None:
                pasted = sum(1 for load in self.triage.loads if load.source.data is not None) + 1
                name = "<paste>" if pasted == 1 else f"<paste {pasted}>"
                self.triage.open_source(Source.memory(text.encode("utf-8"), name), select=True)

        self.push_screen(PasteScreen(), analyse)

    # -- report, exports, clipboard ---------------------------------------------------------------------

    def report(self) -> Report:
        """The findings so far as an engine report (inputs still being read say so in their format)."""
        infos = tuple(self._info(load) for load in self.triage.loads)
        return Report(inputs=infos, incidents=tuple(self.triage.all_incidents()))

    @staticmethod
    def _info(load: Load) -> InputInfo:
        if load.info is not None:
            return load.info
        return InputInfo(
            path=load.display_name,
            format="still-reading",
            encoding="unknown",
            lines=len(load.lines),
            bytes_read=load.bytes_read,
        )

    def default_export_path(self, fmt: str) -> Path:
        """Beside the first input read from disk (``crash.log`` -> ``crash.hvci.json``), else in the export
        folder (pastes, standard input)."""
        for load in self.triage.loads:
            path = load.source.path
            if path is not None and not path.is_dir():
                return path.with_name(f"{path.stem}.hvci.{SUFFIX[fmt]}")
        return self.export_dir / f"hvci-triage-report.{SUFFIX[fmt]}"

    def action_export(self, fmt: str) -> None:
        """Ask where to write the report (default beside the input); ask again before replacing a file."""
        from tui.screens.prompt import PromptScreen

        def confirm(path: Path, answer: str | None) -> None:
            if answer is not None and answer.lower() in ("y", "yes"):
                self.export(fmt, path, overwrite=True)
            else:
                self.notify(f"Not written: {path} already exists.", markup=False)

        def chosen(answer: str | None) -> None:
            if answer is None:
                return
            path = Path(answer).expanduser()
            if path.exists():
                question = f"{path} exists. Replace it? Type y and Enter (Esc keeps it)."
                self.push_screen(PromptScreen(question), partial(confirm, path))
                return
            self.export(fmt, path)

        prompt = PromptScreen(
            f"Write the {fmt} report to (Enter writes, Esc cancels)", str(self.default_export_path(fmt))
        )
        self.push_screen(prompt, chosen)

    def export(self, fmt: str, path: Path, *, overwrite: bool = False) -> Path | None:
        """Write the report in ``fmt`` to ``path`` (never over an existing file unless ``overwrite``)."""
        try:
            data = render(self.report(), fmt).encode("utf-8")
            with path.open("wb" if overwrite else "xb") as handle:
                handle.write(data)
        except FileExistsError:
            self.notify(f"Not written: {path} already exists.", severity="warning", markup=False)
            return None
        except (OSError, ValueError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            self.notify(f"Export failed: {path}: {reason}", severity="error", markup=False)
            return None
        self.notify(f"Wrote the {fmt} report to {path}", markup=False)
        return path

    def _save_clipboard(self, text: str) -> Path:
        """A fresh private file for this copy; the previous one (ours) is removed."""
        handle, name = tempfile.mkstemp(prefix=CLIPBOARD_PREFIX, suffix=".txt")  # 0600, O_EXCL, random
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        previous, self._clipboard_file = self._clipboard_file, Path(name)
        if previous is not None:
            with contextlib.suppress(OSError):
                previous.unlink()
        return self._clipboard_file

    def copy_text(self, text: str, what: str) -> Path | None:
        """Copy via OSC 52 (and pyperclip when installed); also save to a private temp file, since a
        terminal may ignore OSC 52 silently, and say where."""
        self.copy_to_clipboard(text)
        if importlib.util.find_spec("pyperclip") is not None:
            import pyperclip  # optional; only when the user installed it

            with contextlib.suppress(pyperclip.PyperclipException):  # no system clipboard: the file has it
                pyperclip.copy(text)
        try:
            path = self._save_clipboard(text)
        except OSError as error:
            self.notify(
                f"Copied {what} (OSC 52); could not save a copy: {error.strerror or error}", markup=False
            )
            return None
        self.notify(f"Copied {what} (OSC 52); also saved to {path}", markup=False)
        return path

    def action_copy_finding(self) -> None:
        incident = self.triage.current
        if incident is None:
            self.notify("No finding selected.", markup=False)
            return
        self.copy_text(incident_markdown(incident), "the finding as Markdown")

    def action_copy_windbg(self) -> None:
        incident = self.triage.current
        text = commands_text(incident) if incident is not None else ""
        if not text:
            self.notify("No WinDbg commands for this selection.", markup=False)
            return
        self.copy_text(text, "the WinDbg commands")

    def action_copy_remediation(self) -> None:
        from hvci.knowledge import kb

        incident = self.triage.current
        category = kb.load().categories.get(incident.category) if incident and incident.category else None
        if category is None:
            self.notify("No remediation for this selection.", markup=False)
            return
        fix = category.remediation
        parts = [fix.what, fix.why, fix.fix]
        if fix.before:
            parts.append("Before:\n```c\n" + fix.before.rstrip() + "\n```")
        if fix.after:
            parts.append("After:\n```c\n" + fix.after.rstrip() + "\n```")
        if fix.verify:
            parts.append("Verify: " + fix.verify)
        parts.extend(f"- {link.title}: {link.url}" for link in fix.links)
        self.copy_text("\n\n".join(p for p in parts if p), f"the remediation for {category.name}")

    # -- analysis options ---------------------------------------------------------------------------------

    def set_options(self, options: AnalyzeOptions) -> None:
        """Use new analysis options and read every input again with them."""
        self.options = options
        self.triage.feed = self.feed_factory(options)
        self.triage.reload()

    def action_set_symbol_path(self) -> None:
        from tui.screens.prompt import PromptScreen

        def answer(value: str | None) -> None:
            if value is not None:
                self.set_options(replace(self.options, symbol_path=value))
                self.notify(f"Symbol path set to {value}; re-analysing.", markup=False)

        prompt = PromptScreen(
            "Symbol path (WinDbg syntax: folders, srv*cache*url, separated by ;)",
            self.options.symbol_path or "",
        )
        self.push_screen(prompt, answer)

    def action_add_image_folder(self) -> None:
        from tui.screens.prompt import PromptScreen

        def answer(value: str | None) -> None:
            if value is None:
                return
            if not Path(value).is_dir():
                self.notify(f"Not a folder: {value}", severity="error", markup=False)
                return
            self.set_options(replace(self.options, image_dirs=(*self.options.image_dirs, value)))
            self.notify(f"Added image folder {value}; re-analysing.", markup=False)

        self.push_screen(PromptScreen("Folder with the driver images (.sys) and PDBs"), answer)


def make_app(
    sources: Sequence[Source] = (),
    *,
    options: AnalyzeOptions | None = None,
    follow: bool = False,
    feed_factory: FeedFactory = PipelineFeed,
    export_dir: Path | None = None,
    keymap_file: Path | None = None,
    settings_file: Path | None = None,
) -> TriageApp:
    """The app as the command line and the tests build it; the user's keymap file is read here. The view
    settings live beside the keymap unless ``settings_file`` says otherwise."""
    keymap, problem = load_keymap(keymap_file)
    if settings_file is None and keymap_file is not None:
        settings_file = keymap_file.with_name("view.json")
    return TriageApp(
        sources,
        options=options,
        follow=follow,
        feed_factory=feed_factory,
        export_dir=export_dir,
        keymap=keymap,
        keymap_problem=problem,
        settings_file=settings_file,
    )
