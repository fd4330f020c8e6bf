"""When a 0xC4 subcode meaning held (subcodes.toml ``era``), a module of its own: the knowledge records and
an incident's details (:mod:`hvci.details`) both name it, and the details must not import the records
(msgspec structs and their checks) for it."""

from typing import Literal

Era = Literal["current", "older-build", "pre-2020-docs"]
