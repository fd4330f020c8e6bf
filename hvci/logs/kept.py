"""What the analysis keeps of a crash between two classifications, held compact.

A later ``lm``, ``ln`` or the final pass may classify a crash again (:mod:`hvci.logs.pipeline`), so up to
``MAX_ENRICHABLE`` crash groups are kept with the incidents they gave. As Python objects that is about seven
kilobytes a crash, and peak memory grew with the crashes of a long log (issue 16); held as one compressed
pickle each it is well under one, rebuilt only when the crash is classified again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hvci.logs.correlate import Group
    from hvci.model import Incident


class Packer:
    """Holds what the analysis keeps for later as compressed pickles (parser records, groups and incidents
    are msgspec Structs: they pickle whole and compare equal once loaded). The first value packed becomes
    the compression dictionary of the rest: a kept crash is a kilobyte of pickle, too little for zlib to
    find the class references, field values and texts it shares with every other crash of the input, which
    halves what each one takes."""

    def __init__(self) -> None:
        self._zdict: bytes | None = None

    def pack(self, value: object) -> bytes:
        import pickle  # with zlib: ~3 ms of start-up, for inputs that have crashes only
        import zlib

        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        if self._zdict is None:
            self._zdict = data[-_ZDICT_BYTES:]
        compressor = zlib.compressobj(1, zdict=self._zdict)
        return compressor.compress(data) + compressor.flush()

    def unpack(self, blob: bytes) -> Any:
        """The value :meth:`pack` held (only ever bytes this process packed itself)."""
        import pickle
        import zlib

        assert self._zdict is not None
        decompressor = zlib.decompressobj(zdict=self._zdict)
        return pickle.loads(decompressor.decompress(blob) + decompressor.flush())


#: zlib looks back 32 KiB at most: a longer dictionary would not be used
_ZDICT_BYTES = 32 * 1024


class Tracked:
    """A group, the incidents it gave and the ids they have. A kept group (one that a later ``lm``, ``ln``
    or the final pass may classify again) is held as one compressed pickle of the group and its incidents,
    rebuilt only to be classified again. What is looked at between two classifications is kept beside it:
    where it starts and the callers still unresolved."""

    __slots__ = (
        "_group",
        "_incidents",
        "_packed",
        "base_id",
        "first_line",
        "ids",
        "learned",
        "packer",
        "seq",
        "unresolved",
    )

    def __init__(self, group: Group, base_id: str) -> None:
        self._group: Group | None = group
        self._incidents: tuple[Incident, ...] = ()
        self._packed: bytes | None = None
        self.base_id = base_id
        self.ids: list[str] = []  # the ids this group's incidents have, in order
        self.seq = 0  # a kept crash group's place in input order (0: not kept for enrichment)
        self.learned = -1  # the input's ``learned`` count when the group was last classified
        self.packer: Packer | None = None  # set on a kept group: it is held as :attr:`packed`
        self.first_line = group.span.first_line  # the earliest line of the group and of its incidents
        #: each incident caller's address with whether its module and its function are still unknown
        self.unresolved: tuple[tuple[int, bool, bool], ...] = ()

    def unpacked(self) -> tuple[Group, tuple[Incident, ...]]:
        """The group and the incidents it gave when last classified."""
        if self._packed is not None:
            assert self.packer is not None
            group, incidents = self.packer.unpack(self._packed)
            return group, incidents
        assert self._group is not None
        return self._group, self._incidents

    @property
    def group(self) -> Group:
        return self.unpacked()[0]

    @property
    def incidents(self) -> tuple[Incident, ...]:
        return self.unpacked()[1]

    @property
    def packed(self) -> bytes | None:
        """The compressed pickle a kept group is held as (None while it is held as objects)."""
        return self._packed

    def store(self, group: Group, incidents: tuple[Incident, ...]) -> None:
        """Hold the group and its incidents: as one compressed pickle when the group is kept."""
        lines = [group.span.first_line, *(incident.source.first_line for incident in incidents)]
        self.first_line = min(lines)
        self.unresolved = tuple(
            (caller.address, caller.module is None, caller.function is None)
            for caller in (incident.caller for incident in incidents)
            if caller is not None and caller.address is not None
        )
        if self.packer is not None:
            self._packed, self._group, self._incidents = self.packer.pack((group, incidents)), None, ()
        else:
            self._packed, self._group, self._incidents = None, group, incidents
