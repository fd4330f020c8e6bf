"""The worker options ``analyze`` and ``scan`` share: ``-j/--jobs`` and ``--timeout``, one definition so the
two commands say the same thing the same way (only what their defaults are differs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def jobs_option(default: str) -> Callable[[F], F]:
    """``-j/--jobs N``: None when not given (the command's default, which ``default`` says)."""
    return click.option(
        "-j",
        "--jobs",
        type=click.IntRange(min=1),
        default=None,
        help=f"Worker processes (default: {default}). The report is the same for any number.",
    )


def timeout_option(help_text: str) -> Callable[[F], F]:
    """``--timeout SECONDS``: None when not given (the command's default limit), 0 for none."""
    return click.option(
        "--timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS", help=help_text
    )
