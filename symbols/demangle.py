"""Readable names for PDB public symbols: the qualified name of an MSVC-decorated C++ symbol, and x86 C names
without their calling-convention decoration.

Public symbols are the only name a PDB has for code without debug records (import thunks, assembler and
CRT stubs), and they are stored decorated (``?what@exception@std@@UEBAPEBDXZ``). A triage report needs
``std::exception::what``, the way a debugger prints a frame, not the full signature: so this demangles the
*name part* only (scopes, constructors, destructors, operators, back-references) and stops before the
type encoding. Names it cannot decode (templates, local scopes) are returned undecorated-as-is, which is
honest and still searchable.
"""

from __future__ import annotations

import re

_OPERATORS = {
    "0": None,  # constructor: the class name
    "1": None,  # destructor: ~ + the class name
    "2": "operator new",
    "3": "operator delete",
    "4": "operator=",
    "5": "operator>>",
    "6": "operator<<",
    "7": "operator!",
    "8": "operator==",
    "9": "operator!=",
    "A": "operator[]",
    "C": "operator->",
    "D": "operator*",
    "E": "operator++",
    "F": "operator--",
    "G": "operator-",
    "H": "operator+",
    "I": "operator&",
    "J": "operator->*",
    "K": "operator/",
    "L": "operator%",
    "M": "operator<",
    "N": "operator<=",
    "O": "operator>",
    "P": "operator>=",
    "Q": "operator,",
    "R": "operator()",
    "S": "operator~",
    "T": "operator^",
    "U": "operator|",
    "V": "operator&&",
    "W": "operator||",
    "X": "operator*=",
    "Y": "operator+=",
    "Z": "operator-=",
    "_0": "operator/=",
    "_1": "operator%=",
    "_2": "operator>>=",
    "_3": "operator<<=",
    "_4": "operator&=",
    "_5": "operator|=",
    "_6": "operator^=",
    "_7": "`vftable'",
    "_8": "`vbtable'",
    "_E": "`vector deleting dtor'",  # spelled as llvm's and symbolic's demanglers print it
    "_G": "`scalar deleting dtor'",
    "_U": "operator new[]",
    "_V": "operator delete[]",
}
_X86_C_NAME = re.compile(r"^[_@](?P<name>[A-Za-z_$?][\w$?@]*?)(?:@\d+)?$")


def demangle_name(symbol: str, *, x86: bool = False) -> str:
    """The qualified name of a decorated symbol (``std::exception::what``), or ``symbol`` unchanged when it
    is not decorated or uses a form this reader does not decode. On x86, C names lose their ``_``/``@``
    prefix and ``@N`` stack-size suffix (``_DriverEntry@8`` -> ``DriverEntry``), as debuggers show them."""
    if symbol.startswith("?"):
        return _qualified_name(symbol) or symbol
    if x86:
        match = _X86_C_NAME.match(symbol)
        if match:
            return match.group("name")
    return symbol


def _qualified_name(symbol: str) -> str | None:
    pos = 1
    special: str | None = None
    special_kind = ""
    if symbol.startswith("??"):
        code = symbol[2:4] if symbol[2:3] == "_" else symbol[2:3]
        if code not in _OPERATORS:
            return None
        special_kind = code
        special = _OPERATORS[code]
        pos = 2 + len(code)
    fragments: list[str] = []
    backrefs: list[str] = []
    while pos < len(symbol):
        char = symbol[pos]
        if char == "@":
            break
        if char.isdigit():
            index = int(char)
            if index >= len(backrefs):
                return None
            fragments.append(backrefs[index])
            pos += 1
            continue
        if char == "?":
            if symbol.startswith("?A0x", pos):
                end = symbol.find("@", pos)
                if end < 0:
                    return None
                fragments.append("`anonymous namespace'")
                pos = end + 1
                continue
            return None  # templates (?$) and local scopes need the type grammar
        end = symbol.find("@", pos)
        if end <= pos:
            return None
        fragment = symbol[pos:end]
        fragments.append(fragment)
        if len(backrefs) < 10:
            backrefs.append(fragment)
        pos = end + 1
    if not fragments:
        return special if special_kind not in ("", "0", "1") else None
    scopes = fragments[::-1]
    if special_kind == "0":
        return "::".join([*scopes, scopes[-1]])
    if special_kind == "1":
        return "::".join([*scopes, "~" + scopes[-1]])
    if special is not None:
        return "::".join([*scopes, special])
    return "::".join(scopes)
