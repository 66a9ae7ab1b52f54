"""A StorVSP-like SCSI controller with a disk and a DVD drive, and its disk backends.

The controller's saved state is the reference's ``storage.storvsp.SavedState`` (a protocol Oneof
with struct variants, lists of channel and drive states, per-drive Oneofs). The wrapper unit adds
the backends (a RAM disk, a read-only ISO image) as a list of named child blobs.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable

from savestate import (
    NoSavedState,
    Oneof,
    Protobuf,
    RestoreError,
    SavedStateBlob,
    SaveRestore,
    field,
    savedstate,
    u8,
    u16,
    u32,
    u64,
)
from savestate.state.units import restore_children, save_children

# -- storage.scsi.* (the SCSI devices' saved states) --------------------------------------------


class SavedSenseData(Protobuf, package="storage.scsi.common"):
    sense_key: u8 = field(1)
    additional_sense_code: u8 = field(2)
    additional_sense_code_qualifier: u8 = field(3)


class ScsiDiskSavedState(Protobuf, package="storage.scsi.disk"):
    sector_count: u64 = field(1)
    sense_data: SavedSenseData | None = field(2, default=None)


class DriveState(Oneof, package="storage.scsi.dvd"):
    pass


class MediumPresentTrayOpen(DriveState, variant=1):
    pass


class MediumPresentTrayClosed(DriveState, variant=2):
    pass


class MediumNotPresentTrayOpen(DriveState, variant=3):
    pass


class MediumNotPresentTrayClosed(DriveState, variant=4):
    pass


class IsoMediumEvent(Oneof, package="storage.scsi.dvd"):
    pass


class NoMediumEvent(IsoMediumEvent, variant=1, name="None"):
    pass


class NoMediaToMedia(IsoMediumEvent, variant=2):
    pass


class MediaToNoMedia(IsoMediumEvent, variant=3):
    pass


class MediaToMedia(IsoMediumEvent, variant=4):
    pass


class ScsiDvdSavedState(Protobuf, package="storage.scsi.dvd"):
    sense_data: SavedSenseData | None = field(1, default=None)
    persistent: bool = field(2)
    prevent: bool = field(3)
    drive_state: DriveState = field(4)
    pending_medium_event: IsoMediumEvent = field(5)


# -- storage.storvsp -----------------------------------------------------------------------------

PACKAGE = "storage.storvsp"


@savedstate(package=PACKAGE)
class SavedState:
    protocol_state: ProtocolState = field(1, doc="Saved protocol state.")
    channels: list[ChannelSavedState] = field(2, doc="Saved channel state.")
    drives: list[Drive] = field(3, doc="Saved states of all disks/dvds on drives.")


class ProtocolState(Oneof, package=PACKAGE):
    pass


class Init(ProtocolState, variant=1, tuple=True):
    state: InitState = field(1)


class Ready(ProtocolState, variant=2):
    version: u16 = field(1)


class InitState(Oneof, package=PACKAGE):
    pass


class Begin(InitState, variant=1):
    pass


class QueryVersion(InitState, variant=2):
    pass


class QueryProperties(InitState, variant=3):
    version: u16 = field(1)


class EndInitialization(InitState, variant=4):
    version: u16 = field(1)
    can_create_subchannels: bool = field(2)


class ChannelSavedState(Protobuf, package=PACKAGE):
    channel: WorkerSavedState | None = field(1, default=None)


class WorkerSavedState(Protobuf, package=PACKAGE):
    scsi_requests: list[ScsiRequestSavedState] = field(1)


class ScsiRequestSavedState(Protobuf, package=PACKAGE):
    transaction_id: u64 = field(1)
    external_data: RangeSavedState = field(2)
    request: bytes = field(3)


class RangeSavedState(Protobuf, package=PACKAGE):
    buf: list[u64] = field(1)
    count: u64 = field(2)


class ScsiPath(Protobuf, package=PACKAGE):
    path: u8 = field(1)
    target: u8 = field(2)
    lun: u8 = field(3)


class Drive(Protobuf, package=PACKAGE):
    path: ScsiPath = field(1)
    state: DriveSavedState = field(2)


class DriveSavedState(Oneof, package=PACKAGE):
    pass


class Disk(DriveSavedState, variant=1, tuple=True):
    state: ScsiDiskSavedState = field(1)


class Dvd(DriveSavedState, variant=2, tuple=True):
    state: ScsiDvdSavedState = field(1)


# -- the example's backends and wrapper (example-only packages) ----------------------------------


@savedstate(package="examples.vm.ramdisk")
class RamDiskSavedState:
    """A RAM disk's contents."""

    sector_size: u32 = field(1)
    data: bytes = field(2)


class RamDisk(SaveRestore[RamDiskSavedState]):
    def __init__(self, sectors: int, sector_size: int = 512) -> None:
        self.sector_size = sector_size
        self.data = bytearray(sectors * sector_size)

    @property
    def sector_count(self) -> int:
        return len(self.data) // self.sector_size

    def read(self, lba: int, count: int) -> bytes:
        return bytes(self.data[lba * self.sector_size:(lba + count) * self.sector_size])

    def write(self, lba: int, data: bytes) -> None:
        self.data[lba * self.sector_size:lba * self.sector_size + len(data)] = data

    def save(self) -> RamDiskSavedState:
        return RamDiskSavedState(sector_size=self.sector_size, data=bytes(self.data))

    def restore(self, state: RamDiskSavedState) -> None:
        if state.sector_size != self.sector_size or len(state.data) != len(self.data):
            raise RestoreError.InvalidSavedState(
                f"disk geometry changed: {len(state.data)} bytes in {state.sector_size}-byte "
                f"sectors, expected {len(self.data)} in {self.sector_size}"
            )
        self.data = bytearray(state.data)


class IsoImage(SaveRestore[NoSavedState]):
    """A read-only image: nothing to save."""

    def __init__(self, sectors: int) -> None:
        self.data = bytes((i * 7) & 0xFF for i in range(sectors * 2048))

    def save(self) -> NoSavedState:
        return NoSavedState()

    def restore(self, state: NoSavedState) -> None:
        pass


@savedstate(package="examples.vm.storage")
class StorageSavedState:
    """The storage unit: the controller and its backends (named child blobs)."""

    controller: SavedState = field(1)
    backends: list[tuple[str, SavedStateBlob]] = field(2)


# Simulated guest memory: the content of guest page ``gpn``.
def guest_page(gpn: int, size: int = 512) -> bytes:
    return bytes((gpn * 31 + i) & 0xFF for i in range(size))


PROTOCOL_VERSION = 0x0602
OP_TEST_UNIT_READY, OP_REQUEST_SENSE, OP_READ10, OP_WRITE10 = 0x00, 0x03, 0x28, 0x2A
ILLEGAL_REQUEST = (0x05, 0x20, 0x00)
UNIT_ATTENTION = (0x06, 0x28, 0x00)
Completion = Callable[[int, int, int], None]


class StorageController(SaveRestore[StorageSavedState]):
    """LUN 0 is a disk on ``disk0``; LUN 1 a DVD holding ``cdrom0``. One request completes per
    ``latency`` of VM time; each completion raises the interrupt line."""

    latency = 40_000  # 4 ms in VmTime units

    def __init__(self, now: Callable[[], int]) -> None:
        self.now = now
        self.disk0 = RamDisk(sectors=16)
        self.cdrom0 = IsoImage(sectors=2)
        self.phase: tuple[str, int, bool] = ("begin", 0, False)
        self.requests: deque[ScsiRequestSavedState] = deque()
        self.disk_sense: tuple[int, int, int] | None = None
        self.dvd_sense: tuple[int, int, int] | None = None
        self.dvd_event = 2  # NoMediaToMedia: a disc was inserted before boot
        self.dvd_prevent = False
        self.irq = False

    # -- the guest's side of the protocol --------------------------------------------------------

    def send(self, packet: str, version: int = 0) -> None:
        stage, ver, subch = self.phase
        nxt = {("begin", "begin_init"): ("query_version", 0, False),
               ("query_version", "query_version"): ("query_properties", version, False),
               ("query_properties", "query_properties"): ("end_init", ver, True),
               ("end_init", "end_init"): ("ready", ver, subch)}.get((stage, packet))
        if nxt is None:
            raise ValueError(f"unexpected {packet} in protocol stage {stage}")
        self.phase = nxt

    @property
    def ready(self) -> bool:
        return self.phase[0] == "ready"

    def submit(self, transaction_id: int, cdb: bytes, gpns: list[int]) -> None:
        self.requests.append(ScsiRequestSavedState(
            transaction_id=transaction_id,
            external_data=RangeSavedState(buf=list(gpns), count=1 if gpns else 0),
            request=cdb,
        ))

    # -- the device side ---------------------------------------------------------------------------

    def step(self, before: int, complete: Completion) -> None:
        if self.requests and self.now() // self.latency != before // self.latency:
            request = self.requests.popleft()
            status, value = self._execute(request)
            complete(request.transaction_id, status, value)
            self.irq = True

    def _execute(self, request: ScsiRequestSavedState) -> tuple[int, int]:
        cdb = request.request
        lun, op = cdb[0], cdb[1]
        if lun == 1:  # DVD
            if op == OP_TEST_UNIT_READY and self.dvd_event != 1:
                self.dvd_event, self.dvd_sense = 1, UNIT_ATTENTION
                return 2, 0
            if op == OP_REQUEST_SENSE:
                sense, self.dvd_sense = self.dvd_sense, None
                return 0, sense[0] if sense else 0
            if op == OP_TEST_UNIT_READY:
                return 0, 0
            self.dvd_sense = ILLEGAL_REQUEST
            return 2, 0
        lba, blocks = int.from_bytes(cdb[3:7], "big"), int.from_bytes(cdb[8:10], "big")
        if op == OP_WRITE10:
            for i, gpn in enumerate(request.external_data.buf[:blocks]):
                self.disk0.write(lba + i, guest_page(gpn))
            return 0, 0
        if op == OP_READ10:
            return 0, zlib.crc32(self.disk0.read(lba, blocks))
        if op == OP_REQUEST_SENSE:
            sense, self.disk_sense = self.disk_sense, None
            return 0, sense[0] if sense else 0
        self.disk_sense = ILLEGAL_REQUEST
        return 2, 0

    # -- save/restore ----------------------------------------------------------------------------

    def save_controller(self) -> SavedState:
        stage, version, subch = self.phase
        protocol: ProtocolState
        if stage == "ready":
            protocol = Ready(version=version)
        elif stage == "begin":
            protocol = Init(state=Begin())
        elif stage == "query_version":
            protocol = Init(state=QueryVersion())
        elif stage == "query_properties":
            protocol = Init(state=QueryProperties(version=version))
        else:
            protocol = Init(state=EndInitialization(version=version,
                                                    can_create_subchannels=subch))
        worker = WorkerSavedState(scsi_requests=list(self.requests))
        disk = ScsiDiskSavedState(sector_count=self.disk0.sector_count,
                                  sense_data=_sense(self.disk_sense))
        dvd = ScsiDvdSavedState(
            sense_data=_sense(self.dvd_sense), persistent=False, prevent=self.dvd_prevent,
            drive_state=MediumPresentTrayClosed(), pending_medium_event=EVENTS[self.dvd_event](),
        )
        return SavedState(
            protocol_state=protocol,
            channels=[ChannelSavedState(channel=worker)],
            drives=[Drive(path=ScsiPath(path=0, target=0, lun=0), state=Disk(state=disk)),
                    Drive(path=ScsiPath(path=0, target=0, lun=1), state=Dvd(state=dvd))],
        )

    def save(self) -> StorageSavedState:
        return StorageSavedState(
            controller=self.save_controller(),
            backends=save_children({"disk0": self.disk0, "cdrom0": self.cdrom0}),
        )

    def restore(self, state: StorageSavedState) -> None:
        saved = state.controller
        if len(saved.channels) != 1:
            raise RestoreError.InvalidSavedState(
                f"wrong number of channel states: {len(saved.channels)}"
            )
        match saved.protocol_state:
            case Init(state=Begin()):
                phase = ("begin", 0, False)
            case Init(state=QueryVersion()):
                phase = ("query_version", 0, False)
            case Init(state=QueryProperties(version=v)):
                phase = ("query_properties", v, False)
            case Init(state=EndInitialization(version=v, can_create_subchannels=s)):
                phase = ("end_init", v, s)
            case Ready(version=v):
                phase = ("ready", v, True)
            case other:
                raise RestoreError.InvalidSavedState(f"unexpected protocol state {other}")
        disk = dvd = None
        for drive in saved.drives:
            match drive.path.lun, drive.state:
                case 0, Disk(state=disk_state):
                    disk = disk_state
                case 1, Dvd(state=dvd_state):
                    dvd = dvd_state
                case lun, drive_state:
                    raise RestoreError.InvalidSavedState(
                        f"no {type(drive_state).__name__} at lun {lun}"
                    )
        if disk is None or dvd is None:
            raise RestoreError.InvalidSavedState("a drive's saved state is missing")
        restore_children({"disk0": self.disk0, "cdrom0": self.cdrom0}, state.backends)
        worker = saved.channels[0].channel
        self.phase = phase
        self.requests = deque(worker.scsi_requests if worker else [])
        self.disk_sense = _unsense(disk.sense_data)
        self.dvd_sense = _unsense(dvd.sense_data)
        self.dvd_prevent = dvd.prevent
        self.dvd_event = EVENT_NUMBERS[type(dvd.pending_medium_event)]
        self.irq = False


# The runtime keeps the pending medium event as its variant number.
EVENTS: dict[int, type[IsoMediumEvent]] = {
    1: NoMediumEvent, 2: NoMediaToMedia, 3: MediaToNoMedia, 4: MediaToMedia
}
EVENT_NUMBERS = {cls: number for number, cls in EVENTS.items()}


def _sense(sense: tuple[int, int, int] | None) -> SavedSenseData | None:
    if sense is None:
        return None
    key, asc, ascq = sense
    return SavedSenseData(sense_key=key, additional_sense_code=asc,
                          additional_sense_code_qualifier=ascq)


def _unsense(sense: SavedSenseData | None) -> tuple[int, int, int] | None:
    if sense is None:
        return None
    return (sense.sense_key, sense.additional_sense_code, sense.additional_sense_code_qualifier)
