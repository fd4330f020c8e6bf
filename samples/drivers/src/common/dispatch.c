/*
 * dispatch.c - control device, IRP dispatch and unload shared by all fixture drivers.
 * The static and __forceinline helpers give the PDB inline frames for the symbol tests.
 */
#include "driver_common.h"

static UNICODE_STRING DeviceName = RTL_CONSTANT_STRING(L"\\Device\\HvciTriageFixture");
static PDEVICE_OBJECT ControlDevice;

/* Completes an IRP; always inlined into the dispatch routines. */
static FORCEINLINE NTSTATUS CompleteIrp(PIRP Irp, NTSTATUS Status, ULONG_PTR Information)
{
    Irp->IoStatus.Status = Status;
    Irp->IoStatus.Information = Information;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return Status;
}

/* Maps an IOCTL code to an index into FixtureIoctlTable, or -1. */
static DECLSPEC_NOINLINE LONG IoctlIndex(ULONG Code)
{
    ULONG index;

    if ((Code & 0xFFFF0003u) != (FILE_DEVICE_UNKNOWN << 16)) {
        return -1;
    }
    index = ((Code >> 2) & 0xFFF) - 0x800;
    return index < FixtureIoctlCount ? (LONG)index : -1;
}

NTSTATUS NTAPI CommonDispatchCreateClose(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    (void)DeviceObject;
    return CompleteIrp(Irp, STATUS_SUCCESS, 0);
}

NTSTATUS NTAPI CommonDispatchDeviceControl(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION stack = IoGetCurrentIrpStackLocation(Irp);
    ULONG length = stack->Parameters.DeviceIoControl.InputBufferLength;
    ULONG_PTR information = 0;
    LONG index = IoctlIndex(stack->Parameters.DeviceIoControl.IoControlCode);
    NTSTATUS status;

    (void)DeviceObject;
    if (index < 0) {
        return CompleteIrp(Irp, STATUS_INVALID_DEVICE_REQUEST, 0);
    }
    status = FixtureIoctlTable[index](Irp->AssociatedIrp.SystemBuffer, length, &information);
    return CompleteIrp(Irp, status, information);
}

CODE_SEG("PAGE") VOID NTAPI CommonDriverUnload(PDRIVER_OBJECT DriverObject)
{
    (void)DriverObject;
    FixtureCleanup();
    if (ControlDevice != NULL) {
        IoDeleteDevice(ControlDevice);
        ControlDevice = NULL;
    }
}

NTSTATUS CommonInitializeDriver(PDRIVER_OBJECT DriverObject)
{
    NTSTATUS status = IoCreateDevice(DriverObject, 0, &DeviceName, FILE_DEVICE_UNKNOWN,
                                     FILE_DEVICE_SECURE_OPEN, FALSE, &ControlDevice);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    DriverObject->MajorFunction[IRP_MJ_CREATE] = CommonDispatchCreateClose;
    DriverObject->MajorFunction[IRP_MJ_CLOSE] = CommonDispatchCreateClose;
    DriverObject->MajorFunction[IRP_MJ_DEVICE_CONTROL] = CommonDispatchDeviceControl;
    DriverObject->DriverUnload = CommonDriverUnload;
    return STATUS_SUCCESS;
}
