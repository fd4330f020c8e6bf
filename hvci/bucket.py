"""Bucket ids: one stable key per kind of problem, so a lab can group a folder of crash logs.

Modelled on Socorro's crash signatures: the key is built from what identifies the *code* that failed, never
from what differs between runs. ``category:module!function`` (module lower-cased without path or
extension, function without its displacement); when no function is known, ``category:module+0xOFFSET``
(the offset inside the image is the same on every machine, the address is not, because of ASLR); when no
module is known either, just the category. Incidents that are not HVCI-related use the bug check code
(``0xd1:mydriver!Dispatch``) or their kind in place of the category.
"""

from __future__ import annotations

from parsers.deferred import deferred_compile

_EXTENSIONS = (".sys", ".dll", ".exe", ".efi", ".drv")
_DISPLACEMENT = deferred_compile(r"\+(?:0x)?[0-9a-fA-F]+$")


def module_key(module: str) -> str:
    """``\\SystemRoot\\System32\\drivers\\IntelHaxm.SYS`` -> ``intelhaxm``."""
    name = module.replace("/", "\\").rsplit("\\", 1)[-1].strip().lower()
    for extension in _EXTENSIONS:
        if name.endswith(extension):
            return name[: -len(extension)]
    return name


def function_key(function: str) -> str:
    """The function without a printed displacement (``Alloc+0x12`` -> ``Alloc``) or a module prefix."""
    name = function.strip()
    if "!" in name:
        name = name.split("!", 1)[1]
    return _DISPLACEMENT.sub("", name)


def bucket_id(
    prefix: str,
    *,
    module: str | None = None,
    function: str | None = None,
    offset: int | None = None,
) -> str:
    """The bucket for an incident. ``prefix`` is the category id, or for incidents that are not
    HVCI-related the bug check code as ``0x..`` (lower case) or the incident kind."""
    if not module:
        return prefix
    key = module_key(module)
    if function and function_key(function):
        return f"{prefix}:{key}!{function_key(function)}"
    if offset is not None:
        return f"{prefix}:{key}+{offset:#x}"
    return f"{prefix}:{key}"


def bugcheck_prefix(code: int) -> str:
    """``0xd1`` for bug check 0xD1: the prefix of a bucket that is not HVCI-related."""
    return f"{code:#x}"
