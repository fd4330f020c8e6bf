"""Classification: an incident group -> incidents with category, confidence, decoded details and evidence.

Never from Arg1 alone. Each piece of evidence is weighed by how independent and how specific it is:

* the verifier banner (``Verifier Detected a Code Integrity Issue``) is printed by the kernel at the moment of
  the violation and names the issue in words: on its own it is ``certain``;
* the ``!analyze`` text of Arg1 (``Code Integrity Issue: ...``) comes from the debugger's bug-code table: it
  decides the category (``likely``), and with one more independent piece it is ``certain``;
* Arg2 inside a loaded driver, and non-zero counters of the same category for the same driver, support a
  code-integrity reading;
* the number (Arg1, ``BUGCHECK_STR``/``FAILURE_BUCKET_ID`` that merely repeat it) only suggests: a number
  alone is ``possible``. 0x2000 was once a Storport code; 0x2005 meant Unsupported Relocs on an older build
  and IAT now: the banner or the ``!analyze`` text decides, and with numbers only the evidence says so.

Bug checks other than 0xC4 get the HVCI-related category the knowledge base gives them (0xFC, 0xBE, 0x18B,
0x18C, 0x18D), and every other bug check becomes an incident with ``category: None`` and
``hvci_related: False``: nothing in a log is dropped and nothing gets a false HVCI label.

One module per concern: :mod:`.verdict` (category and confidence of a crash), :mod:`.details` (decoded
arguments), :mod:`.callers` (caller address and blamed driver), :mod:`.titles` (title and bucket),
:mod:`.crash` (a crash group put together), :mod:`.others` (counters, readiness, events, image headers),
:mod:`.faults` and :mod:`.blame` (faulting address and driver of any bug check), :mod:`.environment`
(memory integrity's state, Windows Security's verdicts, Driver Verifier notices).
"""

from __future__ import annotations

from hvci.logs.classify.context import Context
from hvci.logs.classify.crash import classify_crash
from hvci.logs.classify.environment import classify_notice
from hvci.logs.classify.others import classify_counters, classify_event, classify_image, classify_readiness
from hvci.logs.correlate import CounterGroup, CrashGroup, EventGroup, Group, NoticeGroup, ReadinessGroup
from hvci.model import Incident

__all__ = ["Context", "classify"]


def classify(group: Group, context: Context) -> list[Incident]:
    """The incidents of one group, ids still unset (the pipeline assigns ``path:first_line``)."""
    if isinstance(group, CrashGroup):
        return [classify_crash(group, context)]
    if isinstance(group, CounterGroup):
        return classify_counters(group, context)
    if isinstance(group, ReadinessGroup):
        return [classify_readiness(group)]
    if isinstance(group, EventGroup):
        return [classify_event(group)]
    if isinstance(group, NoticeGroup):
        return classify_notice(group, context)
    return classify_image(group, context)
