"""Call-site analysis: every call to an HVCI-affected API in a driver image, with the argument deciding it.

Driver Verifier reports Execute Pool Type / Page Protection / Page Mapping only when the code path runs. The
image shows the calls before anyone boots a lab machine: for each call (or tail jump) to an API of the
knowledge base's affected-API table, we recover the deciding argument (``AffectedApi.argument_index``) with a
small forward constant propagation inside the function, and decide it with :mod:`hvci.knowledge.decode`.

The three outcomes are kept apart on purpose: ``executable`` (a finding), ``safe`` (a pass) and ``unknown``
(the value comes from memory, a parameter, a call result, or differs between paths): unknown is never called
clean and never called bad. APIs the table lists without a deciding argument (``MmMapIoSpace``, ...) are
``banned`` findings with the table's note.

How calls are recognised (toolchain.md §2b): ``call/jmp [rip+IAT]`` (clang -O2 tail-calls imports), calls to
import thunks (``jmp [IAT]`` stubs as GNU ld writes them), ``mov reg,[rip+IAT]`` then ``call reg``, and
routine pointers from ``MmGetSystemRoutineAddress`` whose ``UNICODE_STRING`` name is visible (a constant
string, or one built with ``RtlInitUnicodeString``), including through a global they were stored in.

Modules: ``x86`` decodes instructions, ``values`` holds the abstract values, ``dataflow`` and
``calls`` interpret a function, ``verdict`` judges a call, ``rawrefs``, ``prefilter``, ``passes`` and
``analysis`` drive an image (the decoding modules, and capstone, load only for an image with code to decode).

Cost is bounded: in x64 code the bytes of each function first tell whether it may reference anything
relevant (``rawrefs``), a cheap pass without operand details lists those functions (and the code no
function range covers), only the functions that do reference something are decoded in detail, and
instructions are capped per function and per image.
"""

from hvci.images.callsites.analysis import analyse_calls
from hvci.images.callsites.results import (
    BANNED,
    EXECUTABLE,
    SAFE,
    UNKNOWN,
    CallSite,
    CallSiteAnalysis,
    FunctionName,
    ImportedApi,
)
from hvci.images.callsites.verdict import NARROW_KINDS, x86_stack_word

__all__ = [
    "BANNED",
    "EXECUTABLE",
    "NARROW_KINDS",
    "SAFE",
    "UNKNOWN",
    "CallSite",
    "CallSiteAnalysis",
    "FunctionName",
    "ImportedApi",
    "analyse_calls",
    "x86_stack_word",
]
