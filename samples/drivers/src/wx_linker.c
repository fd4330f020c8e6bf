/*
 * wx_linker.c - the W+X section comes from the linker: .wxlnk is an ordinary read/write data
 * section in the object and build.sh links with /section:.wxlnk,RWE (Characteristics
 * 0xE0000040), the Execute-Write Section case (0x2003).
 */
#include "driver_common.h"

#pragma section(".wxlnk", read, write)
/* A jump table that the driver rewrites and then calls into ("xor eax, eax; ret" at first). */
__declspec(allocate(".wxlnk")) UCHAR HookStub[32] = {0x31, 0xC0, 0xC3};

typedef LONG (*HOOK_ROUTINE)(VOID);

static FORCEINLINE VOID SetHookByte(ULONG Offset, UCHAR Value)
{
    ((volatile UCHAR *)HookStub)[Offset % sizeof(HookStub)] = Value;
}

/* IOCTL 0: patch one byte of the stub, then call it. */
NTSTATUS WxLinkerIoctlHook(PVOID Buffer, ULONG Length, ULONG_PTR *Information)
{
    if (Length < 2) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    SetHookByte(((UCHAR *)Buffer)[0], ((UCHAR *)Buffer)[1]);
    *(LONG *)Buffer = ((HOOK_ROUTINE)(PVOID)HookStub)();
    *Information = sizeof(LONG);
    return STATUS_SUCCESS;
}

FIXTURE_IOCTL_HANDLER FixtureIoctlTable[] = {WxLinkerIoctlHook};
const ULONG FixtureIoctlCount = sizeof(FixtureIoctlTable) / sizeof(FixtureIoctlTable[0]);

VOID FixtureCleanup(VOID)
{
}

CODE_SEG("INIT") NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    (void)RegistryPath;
    return CommonInitializeDriver(DriverObject);
}
