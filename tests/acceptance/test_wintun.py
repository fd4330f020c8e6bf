"""wintun.sys (WireGuard's TUN driver, which nobody here built): every call site decided, each decision
checked against a hand reading of its disassembly.

The driver is third-party and never stored in the repository. PyPI's ``pywintun-pmd3`` wheel for
win_amd64 embeds it as the ``WINTUN.SYS`` resource of its ``.pyd``; put that file, named ``wintun.sys``, in
the folder that ``HVCI_REALWORLD_EXTRA`` names (the same opt-in folder as the other extra drivers) and these
tests run; without it they skip.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from hvci.images.callsites import SAFE, analyse_calls
from symbols.pe import PeImage

#: The build read by hand below: the one embedded in pywintun-pmd3 0.0.4 (win_amd64).
SHA256 = "1a7bb3555c5419befb1a5f54267dcae9a7af16749ddf4eef9b431fcf0b863110"


def _wintun() -> PeImage:
    folder = os.environ.get("HVCI_REALWORLD_EXTRA")
    path = Path(folder) / "wintun.sys" if folder else None
    if path is None or not path.is_file():
        pytest.skip("set HVCI_REALWORLD_EXTRA to a folder holding wintun.sys (see this module's docstring)")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != SHA256:
        pytest.skip(f"{path} is another build of wintun.sys than the one read by hand here")
    return PeImage.open(data, name="wintun.sys")


def test_wintun_every_call_is_decided_as_its_code_says() -> None:
    """By hand:

    * 0x1bff and 0x1d26, MmMapLockedPagesSpecifyCache: ``mov eax, [rip+0x3528]`` (the dword at RVA 0x5110),
      ``or eax, 0x40000010``, then ``mov [rsp+0x28], eax``, the 6th argument (Priority). Whatever the
      global holds, MdlMappingNoExecute (0x40000000) is set: not executable.
    * 0x25b2, ExAllocatePoolWithTag: ``mov ecx, 1``: PagedPool, never executable.
    * 0x2805, ExAllocatePoolWithTag: ``mov ecx, [rip+0x2922]`` (the dword at RVA 0x5118), ``bts ecx, 0xa``.
      RVA 0x5118 is 0 in the file and the only store to it is ``mov dword ptr [rip-0x1fa8], 0x200`` at
      0x70b6, reached after RtlGetVersion (``call [rip-0x...]`` at 0x7055) and ``cmp edi, 6; ja`` /
      ``cmp esi, 2; jb``: Windows 8 or later. So NonPagedPoolNx wherever memory integrity can run.
    """
    sites = {s.rva: s for s in analyse_calls(_wintun()).sites}
    assert sorted(sites) == [0x1BFF, 0x1D26, 0x25B2, 0x2805]
    assert all(s.verdict == SAFE for s in sites.values())
    for rva in (0x1BFF, 0x1D26):
        assert (
            "global at RVA 0x5110" in sites[rva].reason and "whatever the global holds" in sites[rva].reason
        )
        assert sites[rva].values == (0x40000010,)
    assert sites[0x25B2].values == (1,)
    opt_in = sites[0x2805].reason
    assert "global at RVA 0x5118" in opt_in and "NX opt-in" in opt_in and "stored at 0x70b6" in opt_in
    assert "RtlGetVersion at 0x7055" in opt_in and sites[0x2805].values == (0x400, 0x600)
