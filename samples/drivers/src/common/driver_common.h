/*
 * driver_common.h - the part every fixture driver shares: a control device, create/close
 * and IOCTL dispatch, unload.  Each fixture supplies FixtureIoctlTable (the IOCTL handlers,
 * a non-static table of function pointers, which also gives the image DIR64 relocations)
 * and FixtureCleanup.
 */
#ifndef DRIVER_COMMON_H
#define DRIVER_COMMON_H

#include "ntoskrnl_min.h"

#define FIXTURE_IOCTL(index) CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800 + (index), METHOD_BUFFERED, FILE_ANY_ACCESS)

typedef NTSTATUS (*FIXTURE_IOCTL_HANDLER)(PVOID Buffer, ULONG Length, ULONG_PTR *Information);

extern FIXTURE_IOCTL_HANDLER FixtureIoctlTable[];
extern const ULONG FixtureIoctlCount;
VOID FixtureCleanup(VOID);

NTSTATUS CommonInitializeDriver(PDRIVER_OBJECT DriverObject);
DRIVER_DISPATCH CommonDispatchCreateClose;
DRIVER_DISPATCH CommonDispatchDeviceControl;
DRIVER_UNLOAD CommonDriverUnload;

/* wdm.h defines IoGetCurrentIrpStackLocation as a FORCEINLINE reading Tail.Overlay. */
FORCEINLINE PIO_STACK_LOCATION IoGetCurrentIrpStackLocation(PIRP Irp)
{
    return *(PIO_STACK_LOCATION *)((PUCHAR)Irp + IRP_CURRENT_STACK_LOCATION_OFFSET);
}

#endif /* DRIVER_COMMON_H */
