"""TensorBoard event files of scalars, written without TensorFlow, tensorboardX or torch.

Point the viewer at a run folder, or at a study's ``runs/`` for every run at once::

    pip install tensorboard            # the viewer only (mmlaws[tensorboard])
    tensorboard --logdir outputs/quickstart/runs

An event file is a TFRecord file: each record is ``uint64 length | uint32 masked CRC-32C of
the length | data | uint32 masked CRC-32C of the data`` (little-endian), the data a serialized
``tensorflow.Event``. The first event carries ``file_version = "brain.Event:2"``; then each
call to :meth:`EventWriter.scalars` writes one event with ``wall_time``, ``step`` and a
``summary`` of ``(tag, simple_value)`` pairs. Field numbers, from TensorBoard's
``event.proto`` and ``summary.proto``: Event.wall_time = 1 (double), step = 2 (int64),
file_version = 3 (string), summary = 5; Summary.value = 1; Summary.Value.tag = 1 (string),
simple_value = 2 (float). Every write is flushed, so the viewer shows a run as it trains.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Mapping

FILE_VERSION = "brain.Event:2"


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        c = byte
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)  # Castagnoli polynomial, reflected
        table.append(c)
    return tuple(table)


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``; ``crc32c(b"123456789") == 0xE3069283``."""
    c = 0xFFFFFFFF
    for byte in data:
        c = _TABLE[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked checksum: the CRC rotated right by 15 bits plus 0xA282EAD8."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(data: bytes) -> bytes:
    """One TFRecord record holding ``data``."""
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", masked_crc32c(length)) + data
            + struct.pack("<I", masked_crc32c(data)))


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 two's complement, as protobuf writes it
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _tag(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _delimited(field: int, data: bytes) -> bytes:
    return _tag(field, 2) + _varint(len(data)) + data


def event(wall_time: float, step: int, *, file_version: str | None = None,
          scalars: Mapping[str, float] | None = None) -> bytes:
    """A serialized ``Event`` with a file version or a summary of scalars."""
    out = _tag(1, 1) + struct.pack("<d", wall_time) + _tag(2, 0) + _varint(int(step))
    if file_version is not None:
        out += _delimited(3, file_version.encode())
    if scalars:
        values = b"".join(
            _delimited(1, _delimited(1, tag.encode()) + _tag(2, 5) + struct.pack("<f", value))
            for tag, value in scalars.items())
        out += _delimited(5, values)
    return out


class EventWriter:
    """Appends scalar events to a new ``events.out.tfevents.*`` file in ``folder``."""

    def __init__(self, folder: str):
        os.makedirs(folder, exist_ok=True)
        now = time.time()
        name = f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{os.getpid()}"
        self.path = os.path.join(folder, name)
        self.file = open(self.path, "ab")
        self._write(event(now, 0, file_version=FILE_VERSION))

    def _write(self, data: bytes) -> None:
        self.file.write(record(data))
        self.file.flush()

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """One event at ``step`` holding every ``tag: value`` of ``values``."""
        if values:
            self._write(event(time.time(), step, scalars=values))

    def close(self) -> None:
        self.file.close()
