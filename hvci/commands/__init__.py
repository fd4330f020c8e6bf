"""Subcommands of ``hvci-triage``; each module defines one ``click.Command`` named ``command``."""

from __future__ import annotations

import importlib

import click

#: One line per subcommand: the module under ``hvci.commands`` that defines it.
_MODULES = ("open", "analyze", "scan", "symbolize", "explain")


def _load() -> list[click.Command]:
    commands = []
    for name in _MODULES:
        try:
            module = importlib.import_module(f"hvci.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"hvci.commands.{name}":
                raise
            continue  # not written yet
        commands.append(module.command)
    return commands


COMMANDS: list[click.Command] = _load()
