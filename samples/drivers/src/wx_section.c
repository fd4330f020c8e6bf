/*
 * wx_section.c - a driver that keeps a code patch area in a section that is writable AND
 * executable (.rwxasm, Characteristics 0xE0000060), the Execute-Write Section case (0x2003).
 * clang drops `execute` from `#pragma section(..., read, write, execute)`, so the section is
 * declared with assembler flags ("d" data, "w" writable, "x" executable).  Built for x64
 * (wx_section.sys), x86 (x86_wx_section.sys) and ARM64 (arm64_wx.sys).
 */
#include "driver_common.h"

/* C names carry a leading underscore on x86 (COFF i386 decoration), not on x64/ARM64. */
#if defined(_M_IX86)
#define PATCH_AREA "_PatchArea"
#else
#define PATCH_AREA "PatchArea"
#endif

/* PatchArea starts with a "return 0" stub for the target; the driver rewrites it at run time. */
#if defined(_M_ARM64)
__asm__(".section .rwxasm,\"dwx\"\n"
        ".globl " PATCH_AREA "\n"
        ".p2align 4\n"
        PATCH_AREA ":\n"
        "  .long 0x52800000\n" /* mov w0, #0 */
        "  .long 0xd65f03c0\n" /* ret */
        "  .zero 56\n"
        ".text\n");
#else
__asm__(".section .rwxasm,\"dwx\"\n"
        ".globl " PATCH_AREA "\n"
        ".p2align 4\n"
        PATCH_AREA ":\n"
        "  .byte 0x31, 0xc0\n" /* xor eax, eax */
        "  .byte 0xc3\n"       /* ret */
        "  .zero 61\n"
        ".text\n");
#endif

extern UCHAR PatchArea[64];
typedef LONG (*PATCHED_ROUTINE)(VOID);

/* Copies new code bytes into the patch area (what makes the W+X section "needed"). */
static DECLSPEC_NOINLINE VOID WritePatch(const UCHAR *Code, ULONG Length)
{
    ULONG i;

    for (i = 0; i < Length && i < sizeof(PatchArea); i++) {
        ((volatile UCHAR *)PatchArea)[i] = Code[i];
    }
}

/* IOCTL 0: install caller-supplied code and run it. */
NTSTATUS WxIoctlPatch(PVOID Buffer, ULONG Length, ULONG_PTR *Information)
{
    WritePatch((const UCHAR *)Buffer, Length);
    *(LONG *)Buffer = ((PATCHED_ROUTINE)(PVOID)PatchArea)();
    *Information = sizeof(LONG);
    return STATUS_SUCCESS;
}

FIXTURE_IOCTL_HANDLER FixtureIoctlTable[] = {WxIoctlPatch};
const ULONG FixtureIoctlCount = sizeof(FixtureIoctlTable) / sizeof(FixtureIoctlTable[0]);

VOID FixtureCleanup(VOID)
{
}

CODE_SEG("INIT") NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    (void)RegistryPath;
    return CommonInitializeDriver(DriverObject);
}
