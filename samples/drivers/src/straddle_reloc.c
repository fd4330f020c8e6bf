/*
 * straddle_reloc.c - pointers that the loader must relocate, placed at chosen page offsets
 * (the "Unsupported Relocs" case, hvci-domain.md 9.4).  .strad is a section of its own, so
 * it starts on a page boundary and a field's offset in StraddleTable is its page offset.
 * #pragma pack(1) stops the compiler from aligning the pointers; each one gets a DIR64 base
 * relocation at its own address:
 *   AtFF8   offset 0x0FF8: bytes 0xFF8-0xFFF, the last pointer that still fits in its page;
 *   AtFFC   offset 0x1FFC: bytes 0x1FFC-0x2003, straddles into the next page;
 *   AtFFF   offset 0x2FFF: bytes 0x2FFF-0x3006, the worst case (one byte in the first page).
 * This is the pattern of Microsoft's MayHaveStraddleRelocations example: a packed global
 * struct initialised with pointers to other globals.
 */
#include "driver_common.h"

#pragma pack(push, 1)
typedef struct _STRADDLE_TABLE {
    UCHAR Header[0xFF8];
    PCSTR AtFF8;
    UCHAR Gap1[0xFFC];
    PCSTR AtFFC;
    UCHAR Gap2[0xFFB];
    PCSTR AtFFF;
    USHORT Trailer;
} STRADDLE_TABLE;
#pragma pack(pop)

_Static_assert(__builtin_offsetof(STRADDLE_TABLE, AtFF8) == 0x0FF8, "layout");
_Static_assert(__builtin_offsetof(STRADDLE_TABLE, AtFFC) == 0x1FFC, "layout");
_Static_assert(__builtin_offsetof(STRADDLE_TABLE, AtFFF) == 0x2FFF, "layout");

#pragma section(".strad", read, write)
__declspec(allocate(".strad")) STRADDLE_TABLE StraddleTable = {
    .Header = {'S', 'T', 'R', 'A'},
    .AtFF8 = "fits in its page",
    .AtFFC = "straddles a page boundary",
    .AtFFF = "one byte before the boundary",
    .Trailer = 0x5354,
};

static FORCEINLINE PCSTR SelectName(ULONG Index)
{
    switch (Index) {
    case 0:
        return StraddleTable.AtFF8;
    case 1:
        return StraddleTable.AtFFC;
    default:
        return StraddleTable.AtFFF;
    }
}

/* IOCTL 0: copy one of the table's strings to the caller. */
NTSTATUS StraddleIoctlName(PVOID Buffer, ULONG Length, ULONG_PTR *Information)
{
    PCSTR name;
    ULONG i;

    if (Length < sizeof(ULONG)) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    name = SelectName(*(ULONG *)Buffer);
    for (i = 0; i + 1 < Length && name[i] != '\0'; i++) {
        ((CHAR *)Buffer)[i] = name[i];
    }
    ((CHAR *)Buffer)[i] = '\0';
    *Information = i + 1;
    return STATUS_SUCCESS;
}

FIXTURE_IOCTL_HANDLER FixtureIoctlTable[] = {StraddleIoctlName};
const ULONG FixtureIoctlCount = sizeof(FixtureIoctlTable) / sizeof(FixtureIoctlTable[0]);

VOID FixtureCleanup(VOID)
{
}

CODE_SEG("INIT") NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    (void)RegistryPath;
    return CommonInitializeDriver(DriverObject);
}
