# -*- coding: utf-8 -*-
"""hvci-triage collector for pykd: records what the debugger knows about a stop into a session file.

In WinDbg, with the target broken in (after a verifier stop or a bug check)::

    .load pykd
    !py <path of this file> [SESSION_FILE]

It runs a fixed set of debugger commands and appends each command with its output, the time and the
target's build to SESSION_FILE as one JSON line (docs/session-format.md), flushing every record, so that a
crash of the debugger loses nothing already read and ``hvci-triage --follow SESSION_FILE`` sees the
records as they arrive. When ``hvci-triage`` is on PATH, its text summary is printed back into the
debugger window.

This file runs inside the Python that pykd embeds (2.7 in older labs, 3.x elsewhere), so it uses the
standard library only, no syntax newer than 2.7 allows, and talks to the debugger through
``pykd.dbgCommand`` alone, which every pykd version has and which a recorded transcript can stand in for.

Safety: debugger output is data. No command is ever built from text the debugger printed; the only
commands are the fixed ones below and ``ln``/``dS``/``da``/``!dh`` followed by a number this script parsed
and formats itself. :func:`allowed` checks every command once more just before it runs.
"""

import json
import numbers
import os
import re
import subprocess
import sys
import tempfile
import time

FORMAT = "hvci-triage-session"
VERSION = 1
COLLECTOR = "pykd"

#: Commands run at every stop, in this order: ``vertarget`` first (every record carries the build), then
#: what the target printed before it stopped (the verifier's banner), as a debugger log shows it.
FIXED_COMMANDS = (
    "vertarget",
    "!dbgprint",
    ".bugcheck",
    "!analyze -v",
    "kb",
    "lm",
    "!verifier 1",
)
#: Commands that take one address, formatted by :func:`address_command`.
ADDRESS_COMMANDS = ("ln", "dS", "da", "!dh")
_ALLOWED_ADDRESS = re.compile(r"^(?:ln|dS|da|!dh) 0x[0-9a-f]{1,16}$")

MAX_OUTPUT = 1000000  # characters of one command's output kept (the rest is cut and flagged)
MAX_LINES_PARSED = 20000  # lines of one output looked at for numbers and names
MAX_ADDRESSES = 48  # ln commands per stop
MAX_SUMMARY_LINES = 40
IMAGE_SUBCODES = (0x2003, 0x2004, 0x2005, 0x2006)  # Arg2 = &UNICODE_STRING image name, Arg4 = section name
CALLER_SUBCODES = (0x2000, 0x2001, 0x2002)  # Arg2 = the caller's address in the driver

_HEX = r"[0-9a-fA-F]{1,8}`?[0-9a-fA-F]{0,8}"
_DOT_CODE = re.compile(r"^\s*Bugcheck code\s+(?:0x)?([0-9a-fA-F]{1,16})\s*$")
_DOT_ARGS = re.compile(r"^\s*Arguments\s+(" + _HEX + r"(?:\s+" + _HEX + r"){0,3})\s*$")
_ANALYZE_CODE = re.compile(r"^\s*BUGCHECK_CODE:\s+([0-9a-fA-F]{1,16})\s*$")
_ANALYZE_PARAM = re.compile(r"^\s*BUGCHECK_P([1-4]):\s+([0-9a-fA-F]{1,16})\s*$")
_ANALYZE_ARG = re.compile(r"^\s*Arg([1-4]):\s+(" + _HEX + r")\s*(?:,|$)")
_CODE_INTEGRITY_ARG1 = re.compile(r"^\s*Arg1:\s+" + _HEX + r"\s*,\s*Code Integrity Issue")
_ANALYZE_TITLE = re.compile(r"^[A-Z0-9_]+ \(([0-9a-fA-F]{1,8})\)\s*$")
_FAULTING_MODULE = re.compile(r"^\s*FAULTING_MODULE:\s+(" + _HEX + r")\s")
_NAME_FIELD = re.compile(r"^\s*(?:IMAGE_NAME|MODULE_NAME):\s+(\S{1,260})\s*$")
_FRAME = re.compile(r"^\s*(?:[0-9a-fA-F]{2,4}\s+)?(" + _HEX + r")\s+(" + _HEX + r")\s")
_MODULE = re.compile(r"^\s*(" + _HEX + r")\s+(" + _HEX + r")\s+(\S{1,260})")
_STRING = re.compile(r'^\s*' + _HEX + r'\s+"([^"]{1,260})"?\s*$')
_BUILT_BY = re.compile(r"^\s*Built by:\s+(\S{1,120})")
_KERNEL_VERSION = re.compile(r"Kernel Version\s+([0-9]{1,6})")


def text_of(value):
    """A command's output as text, whatever the pykd version returned (str, bytes, unicode or None)."""
    if value is None:
        return u""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, type(u"")):
        return value
    return u""


def message_of(problem):
    """An exception's message as text on both Pythons (``str`` is bytes on 2.7)."""
    try:
        return text_of(str(problem))[:4096]
    except Exception:  # a message that cannot even be turned into a string
        return u"(unprintable error)"


def number(text):
    """A hexadecimal number as printed by the debugger (``fffff802`da2d33e8``), or None past 64 bits."""
    value = int(text.replace("`", ""), 16)
    if value >= 1 << 64:
        return None
    return value


def address_command(name, value):
    """``ln``/``dS``/``da``/``!dh`` with an address: the only commands that take an argument."""
    if name not in ADDRESS_COMMANDS:
        raise ValueError("not an address command: %r" % (name,))
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not 0 <= value < 1 << 64:
        raise ValueError("not an address: %r" % (value,))
    return "%s 0x%x" % (name, value)


def allowed(command):
    """Whether ``command`` is one this script may send to the debugger."""
    return command in FIXED_COMMANDS or _ALLOWED_ADDRESS.match(command) is not None


def lines_of(output):
    return output.splitlines()[:MAX_LINES_PARSED]


def parse_bugcheck(dot_bugcheck, analyze):
    """(code, [arg1..arg4]) from ``.bugcheck``, else from ``!analyze -v`` (arguments it does not show are
    None); None when neither shows a bug check with its first argument."""
    code, args = None, []
    for line in lines_of(dot_bugcheck):
        found = _DOT_CODE.match(line)
        if found:
            code = number(found.group(1))
        found = _DOT_ARGS.match(line)
        if found:
            args = [number(part) for part in found.group(1).split()]
    if code and len(args) == 4:
        return code, args
    code, hint, params = None, None, {}
    for line in lines_of(analyze):
        for pattern in (_ANALYZE_CODE, _ANALYZE_TITLE):
            found = pattern.match(line)
            if found and code is None:
                code = number(found.group(1))
        if _CODE_INTEGRITY_ARG1.match(line):
            hint = 0xC4  # an excerpt without its title: Arg1's text is 0xC4's code-integrity wording
        found = _ANALYZE_PARAM.match(line) or _ANALYZE_ARG.match(line)
        if found and found.group(1) not in params:
            params[found.group(1)] = number(found.group(2))
    code = hint if code is None else code
    if code is None or "1" not in params:
        return None
    return code, [params.get(key) for key in "1234"]


def stack_addresses(*outputs):
    """Return addresses of the frames in ``k``-family listings (``kb``, ``STACK_TEXT``), in order."""
    found = []
    for output in outputs:
        for line in lines_of(output):
            frame = _FRAME.match(line)
            if frame:
                value = number(frame.group(2))
                if value:
                    found.append(value)
    return found


def parse_modules(output):
    """(start, end, name) of every module row of an ``lm`` listing."""
    modules = []
    for line in lines_of(output):
        row = _MODULE.match(line)
        if row:
            start, end = number(row.group(1)), number(row.group(2))
            if start is not None and end is not None and start < end:
                modules.append((start, end, row.group(3)))
    return modules


def first_group(pattern, output):
    """Group 1 of the first line of ``output`` that ``pattern`` finds, or None."""
    for line in lines_of(output):
        found = pattern.search(line)
        if found:
            return found.group(1)
    return None


def printed_string(output):
    """The string a ``dS``/``da`` printed (first line), or None."""
    return first_group(_STRING, output)


def _stem(name):
    name = name.strip().lower().replace("\\", "/").split("/")[-1]
    for suffix in (".sys", ".dll", ".exe"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def blamed_base(bugcheck, modules, analyze, image_name):
    """The base address of the driver the stop blames, found by comparing numbers and names (never by
    passing a printed name on): the module holding the caller (0x2000-0x2002), the module whose name is
    the image name read from memory or named by ``!analyze``, else ``FAULTING_MODULE``'s base."""
    if bugcheck and bugcheck[0] == 0xC4 and bugcheck[1][0] in CALLER_SUBCODES:
        caller = bugcheck[1][1]
        for start, end, _name in modules:
            if caller is not None and start <= caller < end:
                return start
    names = [image_name] if image_name else []
    faulting = None
    for line in lines_of(analyze):
        found = _NAME_FIELD.match(line)
        if found:
            names.append(found.group(1))
        found = _FAULTING_MODULE.match(line)
        if found and faulting is None:
            faulting = number(found.group(1))
    for wanted in names:
        for start, _end, name in modules:
            if _stem(name) == _stem(wanted) and _stem(wanted) not in ("nt", "unknown_image", ""):
                return start
    return faulting


def target_build(vertarget):
    """The target's build as ``vertarget`` prints it (``Built by:``), else the kernel version number."""
    return first_group(_BUILT_BY, vertarget) or first_group(_KERNEL_VERSION, vertarget)


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Session(object):
    """An append-only session file: one JSON object per line, flushed to disk record by record."""

    def __init__(self, path):
        self.path = path
        self.seq = 0

    def open(self):
        """Write the header to a new or empty file; refuse a file that is not a session."""
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, "rb") as handle:
                first = handle.readline(65536).decode("utf-8", "replace")
            try:
                header = json.loads(first)
            except ValueError:
                header = None
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise ValueError("%s exists and is not an hvci-triage session file" % (self.path,))
            with open(self.path, "rb") as handle:
                self.seq = sum(1 for _ in handle) - 1
            return
        self.write({
            "format": FORMAT,
            "version": VERSION,
            "kind": "session",
            "collector": COLLECTOR,
            "python": "%d.%d.%d" % tuple(sys.version_info[:3]),
            "started": now(),
        })

    def write(self, record):
        line = json.dumps(record, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
        with open(self.path, "ab") as handle:
            handle.write((line + "\n").encode("ascii"))
            handle.flush()
            os.fsync(handle.fileno())

    def command(self, command, output, build, error):
        self.seq += 1
        record = {
            "kind": "command",
            "seq": self.seq,
            "command": command,
            "output": output[:MAX_OUTPUT],
            "time": now(),
            "target": build,
        }
        if len(output) > MAX_OUTPUT:
            record["truncated"] = len(output)
        if error is not None:
            record["error"] = error
        self.write(record)


class Collector(object):
    """Runs the command set through ``execute`` (``pykd.dbgCommand``) and records every answer."""

    def __init__(self, execute, session):
        self.execute = execute
        self.session = session
        self.build = None
        self.sent = []

    def run(self, command):
        if not allowed(command):  # unreachable by construction; a last guard if this file is edited
            raise ValueError("refusing a command outside the fixed set: %r" % (command,))
        self.sent.append(command)
        error = None
        try:
            output = text_of(self.execute(command))
        except Exception as problem:  # the debugger's own error (pykd.DbgException), or a stand-in's
            output, error = u"", message_of(problem)
        if command == "vertarget":
            self.build = target_build(output[:MAX_OUTPUT])
        self.session.command(command, output, self.build, error)
        return output[:MAX_OUTPUT]

    def collect(self):
        """One stop: the fixed commands, then those that need numbers parsed from their answers."""
        outputs = {}
        for command in FIXED_COMMANDS:
            outputs[command] = self.run(command)
        analyze = outputs["!analyze -v"]
        bugcheck = parse_bugcheck(outputs[".bugcheck"], analyze)
        addresses = stack_addresses(outputs["kb"], analyze)
        if bugcheck and bugcheck[0] == 0xC4 and bugcheck[1][0] in CALLER_SUBCODES and bugcheck[1][1]:
            addresses.insert(0, bugcheck[1][1])
        seen = set()
        for address in addresses:
            if address not in seen and len(seen) < MAX_ADDRESSES:
                seen.add(address)
                self.run(address_command("ln", address))
        image_name = None
        if bugcheck and bugcheck[0] == 0xC4 and bugcheck[1][0] in IMAGE_SUBCODES:
            if bugcheck[1][1]:
                image_name = printed_string(self.run(address_command("dS", bugcheck[1][1])))
            if bugcheck[1][3]:
                self.run(address_command("da", bugcheck[1][3]))
        base = blamed_base(bugcheck, parse_modules(outputs["lm"]), analyze, image_name)
        if base:
            self.run(address_command("!dh", base))
        return bugcheck


def find_tool(path_variable):
    """The ``hvci-triage`` executable on PATH, or None."""
    names = ["hvci-triage"]
    if os.name == "nt":
        names = ["hvci-triage.exe", "hvci-triage.cmd", "hvci-triage.bat"]
    for folder in (path_variable or "").split(os.pathsep):
        for name in names:
            candidate = os.path.join(folder.strip('"'), name)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    return None


def summary(tool, session_path):
    """The first lines of ``hvci-triage analyze --format text SESSION`` (an argument list, no shell)."""
    try:
        child = subprocess.Popen(
            [tool, "analyze", "--format", "text", session_path],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out = text_of(child.communicate()[0])
    except (OSError, ValueError) as problem:
        return u"hvci-triage could not run: %s\n" % (message_of(problem),)
    lines = out.splitlines()
    shown = lines[:MAX_SUMMARY_LINES]
    if len(lines) > MAX_SUMMARY_LINES:
        shown.append(u"... %d more lines: hvci-triage analyze --format text %s"
                     % (len(lines) - MAX_SUMMARY_LINES, session_path))
    return u"\n".join(shown) + u"\n"


def say(text):
    """Print into the debugger window (pykd routes the script's stdout there)."""
    stream = sys.stdout
    try:
        stream.write(text)
    except UnicodeError:
        stream.write(text.encode("ascii", "replace").decode("ascii"))
    stream.flush()


def default_session_path():
    return os.path.join(tempfile.gettempdir(), time.strftime("hvci-session-%Y%m%d-%H%M%S.jsonl"))


def main(argv):
    import pykd  # only here: the parsing above is importable (and tested) without a debugger

    path = os.path.abspath(argv[1]) if len(argv) > 1 else default_session_path()
    session = Session(path)
    try:
        session.open()
    except (OSError, IOError, ValueError) as problem:
        say(u"hvci-triage collector: %s\n" % (message_of(problem),))
        return 2
    collector = Collector(pykd.dbgCommand, session)
    bugcheck = collector.collect()
    stop = u"bug check 0x%x" % bugcheck[0] if bugcheck else u"no bug check"
    say(u"hvci-triage collector: %d commands (%s) recorded in %s\n" % (len(collector.sent), stop, path))
    tool = find_tool(os.environ.get("PATH"))
    if tool is None:
        say(u"hvci-triage is not on PATH here; on a machine with it: hvci-triage analyze %s\n" % (path,))
    else:
        say(summary(tool, path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
