/*
 * api_misuse.c - bad_* / good_* pairs for every API whose arguments decide whether the
 * memory it returns is executable (hvci-domain.md 5.2 and 7), plus calls whose value is
 * only known at run time (unknown_*).  README.md lists each function with the API, the
 * argument and its value.  Built at -O2 (api_misuse.sys: tail calls `jmp [IAT]`) and -O0
 * (api_misuse_O0.sys: `call [IAT]`, values spilled through the stack), and for x86.
 *
 * Every probe is DECLSPEC_NOINLINE and reached through a table, so each API call site stays
 * in the function that the README names (no inlined duplicates in the IOCTL handlers).
 */
#include "driver_common.h"

#define MISUSE_TAG 'HMEM' /* "MEMH" in a pool dump (little-endian) */

typedef PVOID(NTAPI *EX_ALLOCATE_POOL_WITH_TAG)(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
typedef PVOID (*POOL_PROBE)(SIZE_T Size);

/* Chosen in DriverEntry from what the running kernel offers: the call site that reads it
 * cannot be judged statically (the WinDivert 2.x pattern). */
POOL_TYPE MisuseDefaultPoolType;

/* ---- Execute Pool Type (0x2000) ---- */

DECLSPEC_NOINLINE PVOID bad_pool_nonpaged(SIZE_T Size)
{
    return ExAllocatePoolWithTag(NonPagedPool, Size, MISUSE_TAG);
}

DECLSPEC_NOINLINE PVOID good_pool_nonpaged_nx(SIZE_T Size)
{
    return ExAllocatePoolWithTag(NonPagedPoolNx, Size, MISUSE_TAG);
}

DECLSPEC_NOINLINE PVOID bad_pool_untagged(SIZE_T Size)
{
    return ExAllocatePool(NonPagedPool, Size);
}

DECLSPEC_NOINLINE PVOID good_pool_untagged_nx(SIZE_T Size)
{
    return ExAllocatePool(NonPagedPoolNx, Size);
}

DECLSPEC_NOINLINE PVOID bad_pool_quota(SIZE_T Size)
{
    return ExAllocatePoolWithQuotaTag(NonPagedPool, Size, MISUSE_TAG);
}

DECLSPEC_NOINLINE PVOID good_pool_quota_nx(SIZE_T Size)
{
    return ExAllocatePoolWithQuotaTag(NonPagedPoolNx, Size, MISUSE_TAG);
}

DECLSPEC_NOINLINE PVOID bad_pool_priority(SIZE_T Size)
{
    return ExAllocatePoolWithTagPriority(NonPagedPool, Size, MISUSE_TAG, NormalPoolPriority);
}

DECLSPEC_NOINLINE PVOID good_pool_priority_nx(SIZE_T Size)
{
    return ExAllocatePoolWithTagPriority(NonPagedPoolNx, Size, MISUSE_TAG, NormalPoolPriority);
}

DECLSPEC_NOINLINE PVOID bad_pool2_execute(SIZE_T Size)
{
    return ExAllocatePool2(POOL_FLAG_NON_PAGED_EXECUTE, Size, MISUSE_TAG);
}

DECLSPEC_NOINLINE PVOID good_pool2_nonpaged(SIZE_T Size)
{
    return ExAllocatePool2(POOL_FLAG_NON_PAGED, Size, MISUSE_TAG);
}

/* The pool type is built with bit operations that survive -O2: the empty asm makes the
 * compiler forget the starting constant, so the image really contains the `and`/`or`/`bts`
 * (the wintun pattern); a scan needs constant propagation to get the final value. */
DECLSPEC_NOINLINE PVOID bad_pool_bitops(SIZE_T Size)
{
    ULONG type = NonPagedPoolNxCacheAligned;
    __asm__ volatile("" : "+r"(type));
    type &= ~(ULONG)NonPagedPoolNx; /* clears the NX bit: NonPagedPoolCacheAligned (4) */
    return ExAllocatePoolWithTag((POOL_TYPE)type, Size, MISUSE_TAG);
}

DECLSPEC_NOINLINE PVOID good_pool_bitops_nx(SIZE_T Size)
{
    ULONG type = NonPagedPool;
    __asm__ volatile("" : "+r"(type));
    type |= NonPagedPoolNx; /* 0 | 0x200 = NonPagedPoolNx */
    return ExAllocatePoolWithTag((POOL_TYPE)type, Size, MISUSE_TAG);
}

#if defined(_M_X64) || defined(_M_IX86)
DECLSPEC_NOINLINE PVOID good_pool_bts_nx(SIZE_T Size)
{
    ULONG type = NonPagedPool;
    __asm__ volatile("btsl $9, %0" : "+r"(type)); /* sets bit 9: NonPagedPoolNx */
    return ExAllocatePoolWithTag((POOL_TYPE)type, Size, MISUSE_TAG);
}
#endif

DECLSPEC_NOINLINE PVOID unknown_pool_global(SIZE_T Size)
{
    return ExAllocatePoolWithTag(MisuseDefaultPoolType, Size, MISUSE_TAG);
}

DECLSPEC_NOINLINE PVOID unknown_pool_param(POOL_TYPE PoolType, SIZE_T Size)
{
    return ExAllocatePoolWithTag(PoolType, Size, MISUSE_TAG);
}

static DECLSPEC_NOINLINE PVOID unknown_pool_param_caller(SIZE_T Size)
{
    return unknown_pool_param(MisuseDefaultPoolType, Size);
}

/* The import table does not show this call: the API is looked up by name at run time. */
DECLSPEC_NOINLINE PVOID bad_pool_routine_ptr(SIZE_T Size)
{
    static UNICODE_STRING name = RTL_CONSTANT_STRING(L"ExAllocatePoolWithTag");
    EX_ALLOCATE_POOL_WITH_TAG allocate = (EX_ALLOCATE_POOL_WITH_TAG)MmGetSystemRoutineAddress(&name);

    if (allocate == NULL) {
        return NULL;
    }
    return allocate(NonPagedPool, Size, MISUSE_TAG);
}

DECLSPEC_NOINLINE VOID bad_lookaside_exec(PNPAGED_LOOKASIDE_LIST Lookaside)
{
    ExInitializeNPagedLookasideList(Lookaside, NULL, NULL, 0, 256, MISUSE_TAG, 0);
}

DECLSPEC_NOINLINE VOID good_lookaside_nx(PNPAGED_LOOKASIDE_LIST Lookaside)
{
    ExInitializeNPagedLookasideList(Lookaside, NULL, NULL, POOL_NX_ALLOCATION, 256, MISUSE_TAG, 0);
}

/* ---- Execute Page Protection (0x2001) ---- */

DECLSPEC_NOINLINE PVOID bad_io_space_rwx(PHYSICAL_ADDRESS Address, SIZE_T Size)
{
    return MmMapIoSpaceEx(Address, Size, PAGE_EXECUTE_READWRITE);
}

DECLSPEC_NOINLINE PVOID good_io_space_rw(PHYSICAL_ADDRESS Address, SIZE_T Size)
{
    return MmMapIoSpaceEx(Address, Size, PAGE_READWRITE | PAGE_NOCACHE);
}

/* MmMapIoSpace has no protection argument: always executable, banned by C30029. */
DECLSPEC_NOINLINE PVOID bad_io_space_legacy(PHYSICAL_ADDRESS Address, SIZE_T Size)
{
    return MmMapIoSpace(Address, Size, MmNonCached);
}

DECLSPEC_NOINLINE NTSTATUS bad_mdl_protect_rx(PMDL Mdl)
{
    return MmProtectMdlSystemAddress(Mdl, PAGE_EXECUTE_READ);
}

DECLSPEC_NOINLINE NTSTATUS good_mdl_protect_ro(PMDL Mdl)
{
    return MmProtectMdlSystemAddress(Mdl, PAGE_READONLY);
}

DECLSPEC_NOINLINE NTSTATUS bad_user_alloc_rwx(PVOID *Base, SIZE_T *Size)
{
    return ZwAllocateVirtualMemory(ZwCurrentProcess(), Base, 0, Size, MEM_COMMIT | MEM_RESERVE,
                                   PAGE_EXECUTE_READWRITE);
}

DECLSPEC_NOINLINE NTSTATUS good_user_alloc_rw(PVOID *Base, SIZE_T *Size)
{
    return ZwAllocateVirtualMemory(ZwCurrentProcess(), Base, 0, Size, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
}

static FORCEINLINE PHYSICAL_ADDRESS PhysicalAddress(LONGLONG Value)
{
    PHYSICAL_ADDRESS address;
    address.QuadPart = Value;
    return address;
}

DECLSPEC_NOINLINE PVOID bad_contig_rwx(SIZE_T Size)
{
    return MmAllocateContiguousNodeMemory(Size, PhysicalAddress(0), PhysicalAddress(0xFFFFFFFF), PhysicalAddress(0),
                                          PAGE_EXECUTE_READWRITE, MM_ANY_NODE_OK);
}

DECLSPEC_NOINLINE PVOID good_contig_rw(SIZE_T Size)
{
    return MmAllocateContiguousNodeMemory(Size, PhysicalAddress(0), PhysicalAddress(0xFFFFFFFF), PhysicalAddress(0),
                                          PAGE_READWRITE, MM_ANY_NODE_OK);
}

/* ---- Execute Page Mapping (0x2002): Priority is the 6th argument (on the stack on x64) ---- */

DECLSPEC_NOINLINE PVOID bad_mdl_map_normal(PMDL Mdl)
{
    return MmMapLockedPagesSpecifyCache(Mdl, KernelMode, MmCached, NULL, FALSE, NormalPagePriority);
}

DECLSPEC_NOINLINE PVOID good_mdl_map_noexecute(PMDL Mdl)
{
    return MmMapLockedPagesSpecifyCache(Mdl, KernelMode, MmCached, NULL, FALSE,
                                        NormalPagePriority | MdlMappingNoExecute);
}

/* ---- IOCTL handlers that drive the probes ---- */

typedef struct _MISUSE_REQUEST {
    ULONG Probe;
    ULONG Safe;
    LONGLONG PhysicalAddress;
} MISUSE_REQUEST;

POOL_PROBE MisusePoolProbes[] = {
    bad_pool_nonpaged, good_pool_nonpaged_nx, bad_pool_untagged, good_pool_untagged_nx,
    bad_pool_quota, good_pool_quota_nx, bad_pool_priority, good_pool_priority_nx,
    bad_pool2_execute, good_pool2_nonpaged, bad_pool_bitops, good_pool_bitops_nx,
#if defined(_M_X64) || defined(_M_IX86)
    good_pool_bts_nx,
#endif
    unknown_pool_global, unknown_pool_param_caller, bad_pool_routine_ptr, bad_contig_rwx, good_contig_rw,
};

static FORCEINLINE const MISUSE_REQUEST *ValidateRequest(PVOID Buffer, ULONG Length)
{
    return Length >= sizeof(MISUSE_REQUEST) ? (const MISUSE_REQUEST *)Buffer : NULL;
}

/* IOCTL 0: allocate from one of the pool probes and free it again. */
NTSTATUS MisuseIoctlPool(PVOID Buffer, ULONG Length, ULONG_PTR *Information)
{
    const MISUSE_REQUEST *request = ValidateRequest(Buffer, Length);
    PVOID block;

    if (request == NULL || request->Probe >= sizeof(MisusePoolProbes) / sizeof(MisusePoolProbes[0])) {
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    block = MisusePoolProbes[request->Probe](64);
    if (block == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    ExFreePool(block);
    *Information = 0;
    return STATUS_SUCCESS;
}

/* IOCTL 1: map device memory with MmMapIoSpaceEx (or the legacy MmMapIoSpace). */
NTSTATUS MisuseIoctlIoSpace(PVOID Buffer, ULONG Length, ULONG_PTR *Information)
{
    const MISUSE_REQUEST *request = ValidateRequest(Buffer, Length);
    PHYSICAL_ADDRESS address;
    PVOID mapping;

    if (request == NULL) {
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    address.QuadPart = request->PhysicalAddress;
    if (request->Probe == 2) {
        mapping = bad_io_space_legacy(address, 0x1000);
    } else {
        mapping = request->Safe ? good_io_space_rw(address, 0x1000) : bad_io_space_rwx(address, 0x1000);
    }
    if (mapping == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    MmUnmapIoSpace(mapping, 0x1000);
    *Information = 0;
    return STATUS_SUCCESS;
}

/* IOCTL 2: describe the caller's buffer with an MDL, then map it again and reprotect it. */
NTSTATUS MisuseIoctlMdl(PVOID Buffer, ULONG Length, ULONG_PTR *Information)
{
    const MISUSE_REQUEST *request = ValidateRequest(Buffer, Length);
    PMDL mdl;
    PVOID mapping;
    NTSTATUS status;

    if (request == NULL) {
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    mdl = IoAllocateMdl(Buffer, Length, FALSE, FALSE, NULL);
    if (mdl == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    MmBuildMdlForNonPagedPool(mdl);
    mapping = request->Safe ? good_mdl_map_noexecute(mdl) : bad_mdl_map_normal(mdl);
    if (mapping == NULL) {
        IoFreeMdl(mdl);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    status = request->Safe ? good_mdl_protect_ro(mdl) : bad_mdl_protect_rx(mdl);
    MmUnmapLockedPages(mapping, mdl);
    IoFreeMdl(mdl);
    *Information = 0;
    return status;
}

/* IOCTL 3: set up and tear down a lookaside list. */
NTSTATUS MisuseIoctlLookaside(PVOID Buffer, ULONG Length, ULONG_PTR *Information)
{
    static NPAGED_LOOKASIDE_LIST lookaside;
    const MISUSE_REQUEST *request = ValidateRequest(Buffer, Length);

    if (request == NULL) {
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    if (request->Safe) {
        good_lookaside_nx(&lookaside);
    } else {
        bad_lookaside_exec(&lookaside);
    }
    ExDeleteNPagedLookasideList(&lookaside);
    *Information = 0;
    return STATUS_SUCCESS;
}

/* IOCTL 4: commit and release user memory in the calling process. */
NTSTATUS MisuseIoctlUserMemory(PVOID Buffer, ULONG Length, ULONG_PTR *Information)
{
    const MISUSE_REQUEST *request = ValidateRequest(Buffer, Length);
    PVOID base = NULL;
    SIZE_T size = 0x1000;
    NTSTATUS status;

    if (request == NULL) {
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    status = request->Safe ? good_user_alloc_rw(&base, &size) : bad_user_alloc_rwx(&base, &size);
    if (NT_SUCCESS(status)) {
        size = 0;
        ZwFreeVirtualMemory(ZwCurrentProcess(), &base, &size, MEM_RELEASE);
    }
    *Information = 0;
    return status;
}

FIXTURE_IOCTL_HANDLER FixtureIoctlTable[] = {
    MisuseIoctlPool, MisuseIoctlIoSpace, MisuseIoctlMdl, MisuseIoctlLookaside, MisuseIoctlUserMemory,
};
const ULONG FixtureIoctlCount = sizeof(FixtureIoctlTable) / sizeof(FixtureIoctlTable[0]);

VOID FixtureCleanup(VOID)
{
}

CODE_SEG("INIT") NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    static UNICODE_STRING pool2 = RTL_CONSTANT_STRING(L"ExAllocatePool2");

    (void)RegistryPath;
    /* Windows 10 2004+ exports ExAllocatePool2 and has NX pool; older kernels get the old type. */
    MisuseDefaultPoolType = MmGetSystemRoutineAddress(&pool2) != NULL ? NonPagedPoolNx : NonPagedPool;
    return CommonInitializeDriver(DriverObject);
}
