/*
 * highlow_reloc.c - a PE32+ image with IMAGE_REL_BASED_HIGHLOW (type 3) base relocations,
 * which the older verifier check reports as "unsupported relocs" on x64 (hvci-domain.md 1.3).
 * The 32-bit absolute addresses come from hand-written assembly (a dispatch table of .long
 * entries, as in x86 assembly ported to x64 unchanged): the assembler emits
 * IMAGE_REL_AMD64_ADDR32 and lld-link turns each into a HIGHLOW base relocation.  build.sh
 * links with /largeaddressaware:no /base:0x10000 so that the 32-bit values are correct at
 * the preferred base (lld-link 14 would silently truncate them at 0x140000000).
 */
#include "driver_common.h"

NTSTATUS HighLowIoctlVersion(PVOID Buffer, ULONG Length, ULONG_PTR *Information);
NTSTATUS HighLowIoctlEcho(PVOID Buffer, ULONG Length, ULONG_PTR *Information);

/* LegacyHandlerTable: 32-bit absolute addresses of the IOCTL handlers. */
__asm__(".section .rdata,\"dr\"\n"
        ".globl LegacyHandlerTable\n"
        ".p2align 2\n"
        "LegacyHandlerTable:\n"
        "  .long HighLowIoctlVersion\n"
        "  .long HighLowIoctlEcho\n"
        ".text\n");
extern const ULONG LegacyHandlerTable[2];

/* Turns a 32-bit table entry back into a function pointer. */
static FORCEINLINE FIXTURE_IOCTL_HANDLER LegacyHandler(ULONG Index)
{
    return (FIXTURE_IOCTL_HANDLER)(ULONG_PTR)LegacyHandlerTable[Index & 1];
}

NTSTATUS HighLowIoctlVersion(PVOID Buffer, ULONG Length, ULONG_PTR *Information)
{
    if (Length < sizeof(ULONG)) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    *(ULONG *)Buffer = 0x00010000;
    *Information = sizeof(ULONG);
    return STATUS_SUCCESS;
}

NTSTATUS HighLowIoctlEcho(PVOID Buffer, ULONG Length, ULONG_PTR *Information)
{
    (void)Buffer;
    *Information = Length;
    return STATUS_SUCCESS;
}

/* IOCTL 0: call a legacy handler chosen by the first ULONG of the request. */
NTSTATUS HighLowIoctlLegacy(PVOID Buffer, ULONG Length, ULONG_PTR *Information)
{
    if (Length < sizeof(ULONG)) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    return LegacyHandler(*(ULONG *)Buffer)(Buffer, Length, Information);
}

FIXTURE_IOCTL_HANDLER FixtureIoctlTable[] = {HighLowIoctlLegacy};
const ULONG FixtureIoctlCount = sizeof(FixtureIoctlTable) / sizeof(FixtureIoctlTable[0]);

VOID FixtureCleanup(VOID)
{
}

CODE_SEG("INIT") NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    (void)RegistryPath;
    return CommonInitializeDriver(DriverObject);
}
