"""The worker options ``analyze`` and ``scan`` share: ``-j/--jobs`` and ``--timeout``, one definition so the
two commands say the same thing the same way (only what a time limit's default is differs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: ``-j/--jobs N``: None when not given (the caller takes :func:`hvci.batch.cores.default_jobs`).
jobs_option: Callable[[F], F] = click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: all cores). The report is the same for any number.",
)


def timeout_option(help_text: str) -> Callable[[F], F]:
    """``--timeout SECONDS``: None when not given (the command's default limit), 0 for none."""
    return click.option(
        "--timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS", help=help_text
    )
