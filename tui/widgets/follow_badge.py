"""The follow badge: whether a followed log is tailing live, or paused with N new lines waiting."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


def badge_text(following: bool, pending: int) -> Text:
    if following:
        return Text("● following", style="bold green", end="")
    waiting = f" · {pending} new line{'s' if pending != 1 else ''}" if pending else ""
    return Text(f"⏸ paused{waiting} · End resumes", style="bold yellow", end="")


class FollowBadge(Static):
    """Hidden unless the input is followed (``--follow``)."""

    DEFAULT_CSS = """
    FollowBadge { width: auto; padding: 0 1; display: none; }
    FollowBadge.-active { display: block; }
    """

    def show_state(self, following: bool, pending: int) -> None:
        self.add_class("-active")
        self.update(badge_text(following, pending))
