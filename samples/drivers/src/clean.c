/*
 * clean.c - the HVCI-compatible baseline: every allocation and mapping asks for
 * non-executable memory, sections are 4K-aligned, nothing is W+X, the IAT is in .rdata.
 */
#include "driver_common.h"

#define CLEAN_TAG 'nlcH' /* "Hcln" in a pool dump */

typedef struct _CLEAN_CONTEXT {
    PVOID SharedBuffer;
    PMDL SharedMdl;
    ULONG RequestCount;
} CLEAN_CONTEXT;

static CLEAN_CONTEXT *Context;

/* Allocates the per-driver context from NX non-paged pool (ExAllocatePool2 zeroes it). */
static DECLSPEC_NOINLINE CLEAN_CONTEXT *AllocateContext(VOID)
{
    return (CLEAN_CONTEXT *)ExAllocatePool2(POOL_FLAG_NON_PAGED, sizeof(CLEAN_CONTEXT), CLEAN_TAG);
}

static FORCEINLINE PVOID AllocateSharedBuffer(SIZE_T Size)
{
    return ExAllocatePoolWithTag(NonPagedPoolNx, Size, CLEAN_TAG);
}

/* Maps a buffer into system space a second time, read/write and no-execute. */
PVOID CleanMapShared(PMDL Mdl)
{
    return MmMapLockedPagesSpecifyCache(Mdl, KernelMode, MmCached, NULL, FALSE,
                                        NormalPagePriority | MdlMappingNoExecute);
}

/* IOCTL 0: map the shared buffer through an MDL and report its first ULONG. */
NTSTATUS CleanIoctlMapShared(PVOID Buffer, ULONG Length, ULONG_PTR *Information)
{
    PVOID mapping;

    if (Length < sizeof(ULONG)) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    mapping = CleanMapShared(Context->SharedMdl);
    if (mapping == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    *(ULONG *)Buffer = *(ULONG *)mapping;
    MmUnmapLockedPages(mapping, Context->SharedMdl);
    Context->RequestCount++;
    *Information = sizeof(ULONG);
    return STATUS_SUCCESS;
}

/* IOCTL 1: read a device register through an uncached, non-executable I/O mapping. */
NTSTATUS CleanIoctlReadRegister(PVOID Buffer, ULONG Length, ULONG_PTR *Information)
{
    PHYSICAL_ADDRESS address;
    volatile ULONG *registers;

    if (Length < sizeof(ULONGLONG)) {
        return STATUS_BUFFER_TOO_SMALL;
    }
    address.QuadPart = *(LONGLONG *)Buffer;
    registers = (volatile ULONG *)MmMapIoSpaceEx(address, 0x1000, PAGE_READWRITE | PAGE_NOCACHE);
    if (registers == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    *(ULONG *)Buffer = registers[0];
    MmUnmapIoSpace((PVOID)registers, 0x1000);
    *Information = sizeof(ULONG);
    return STATUS_SUCCESS;
}

FIXTURE_IOCTL_HANDLER FixtureIoctlTable[] = {CleanIoctlMapShared, CleanIoctlReadRegister};
const ULONG FixtureIoctlCount = sizeof(FixtureIoctlTable) / sizeof(FixtureIoctlTable[0]);

VOID FixtureCleanup(VOID)
{
    if (Context == NULL) {
        return;
    }
    if (Context->SharedMdl != NULL) {
        IoFreeMdl(Context->SharedMdl);
    }
    if (Context->SharedBuffer != NULL) {
        ExFreePoolWithTag(Context->SharedBuffer, CLEAN_TAG);
    }
    ExFreePoolWithTag(Context, CLEAN_TAG);
    Context = NULL;
}

CODE_SEG("INIT") NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    (void)RegistryPath;
    Context = AllocateContext();
    if (Context == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    Context->SharedBuffer = AllocateSharedBuffer(0x1000);
    if (Context->SharedBuffer == NULL) {
        FixtureCleanup();
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    Context->SharedMdl = IoAllocateMdl(Context->SharedBuffer, 0x1000, FALSE, FALSE, NULL);
    if (Context->SharedMdl == NULL) {
        FixtureCleanup();
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    MmBuildMdlForNonPagedPool(Context->SharedMdl);
    return CommonInitializeDriver(DriverObject);
}
