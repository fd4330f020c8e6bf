"""WinDbg and verifier command lines to inspect or reproduce a finding, offered as copyable text.

Log text must never reach a shell or a debugger unchecked, and a copied command is one paste away from
both: a driver name or address is put into a command only when it has the shape such a name can have
(``[A-Za-z0-9_.-]``, one dot-suffix such as ``.sys``), otherwise the command is left out and the pane says
why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hvci.knowledge import kb
from hvci.model import Incident

_SAFE_IMAGE = re.compile(r"^[A-Za-z0-9_\-]{1,64}(\.[A-Za-z0-9]{1,8})?$")


@dataclass(frozen=True, slots=True)
class Command:
    text: str
    purpose: str


def image_name(incident: Incident) -> str | None:
    """The blamed driver's image name (``drv.sys``) when it is safe to put in a command line."""
    name = incident.driver or (incident.caller.module if incident.caller is not None else None)
    if not name or not _SAFE_IMAGE.match(name):
        return None
    return name if "." in name else f"{name}.sys"


def commands_for(incident: Incident) -> tuple[list[Command], str | None]:
    """The commands for ``incident`` and, when some had to be left out, the reason."""
    commands: list[Command] = []
    caller = incident.caller
    if caller is not None and caller.address is not None:
        commands.append(Command(f"ln 0x{caller.address:x}", "nearest symbol to the caller address"))
        commands.append(Command(f"ub 0x{caller.address:x} L8", "the instructions before the caller address"))
    image = image_name(incident)
    if image is not None:
        module = image.rsplit(".", 1)[0]
        commands.append(Command(f"lmvm {module}", "the driver's image, timestamp and symbol status"))
        commands.append(Command(f"!verifier 3 {image}", "verifier state and counters for the driver"))
        commands.append(
            Command(
                f"verifier /flags 0x{kb.load().verifier.flag:08X} /driver {image}",
                "on the target, elevated, then reboot: reproduce with code-integrity checks",
            )
        )
    if incident.bugcheck is not None:
        commands.append(Command("!analyze -v", "the debugger's own analysis of the bug check"))
    reason = None
    named = incident.driver or (caller.module if caller is not None else None)
    if named and image is None:
        reason = "driver name has characters a module name cannot have; its commands are left out"
    return commands, reason


def commands_text(incident: Incident) -> str:
    """The command lines alone, one per line, ready to paste."""
    commands, _ = commands_for(incident)
    return "\n".join(c.text for c in commands)
