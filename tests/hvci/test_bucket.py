"""Bucket ids: stable, machine-independent keys."""

from __future__ import annotations

from hvci.bucket import bucket_id, bugcheck_prefix, function_key, module_key


def test_module_key_drops_path_extension_and_case() -> None:
    assert module_key(r"\SystemRoot\System32\drivers\IntelHaxm.SYS") == "intelhaxm"
    assert module_key("IntelHaxm") == "intelhaxm"


def test_function_key_drops_displacement_and_module() -> None:
    assert function_key("IntelHaxm!hax_alloc_buffer+0x12") == "hax_alloc_buffer"
    assert function_key("hax_alloc_buffer+12") == "hax_alloc_buffer"
    assert function_key("CMiniport::NewStream") == "CMiniport::NewStream"


def test_bucket_forms() -> None:
    assert bucket_id("execute-pool-type", module="IntelHaxm.sys", function="AllocateBuffer") == (
        "execute-pool-type:intelhaxm!AllocateBuffer"
    )
    assert (
        bucket_id("execute-pool-type", module="IntelHaxm.sys", offset=0x52F0)
        == "execute-pool-type:intelhaxm+0x52f0"
    )
    assert bucket_id("section-alignment", module="OldTimer.sys") == "section-alignment:oldtimer"
    assert bucket_id(bugcheck_prefix(0xD1)) == "0xd1"


def test_bucket_does_not_depend_on_load_address_or_spelling() -> None:
    """The same violation on two machines: different bases and spellings, one bucket."""
    a = bucket_id("execute-pool-type", module="IntelHaxm", function="hax_alloc_buffer+0x12", offset=0x52F0)
    b = bucket_id("execute-pool-type", module="intelhaxm.sys", function="hax_alloc_buffer", offset=0x52F0)
    assert a == b
