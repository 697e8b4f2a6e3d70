"""The idx file format of MNIST and Fashion-MNIST, read with numpy (``.gz`` or raw).

An idx file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian 32-bit size per dimension, then the values in C order. MNIST uses unsigned
bytes: images are ``(N, 28, 28)``, labels ``(N,)``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from gankit.errors import DataError

_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array an idx file holds; a :class:`DataError` naming the file if it is damaged."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except (OSError, EOFError, zlib.error) as exc:  # zlib.error: a damaged deflate stream
        raise DataError(f"{path} cannot be read ({exc}); download it again "
                        "(gankit data download mnist --force)") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise DataError(f"{path} is not an idx file (bad magic number); expected MNIST-style "
                        "files such as t10k-images-idx3-ubyte.gz")
    dtype, ndim = _TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated (its header is incomplete); download it again")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != count * dtype.itemsize:
        raise DataError(
            f"{path} holds {len(data) - header} bytes of values, but its header announces "
            f"shape {shape} ({count * dtype.itemsize} bytes); the file is truncated or damaged: "
            "download it again")
    return np.frombuffer(data, dtype, count=count, offset=header).reshape(shape).astype(
        dtype.newbyteorder("="))


def write_idx(array: np.ndarray, path: str | os.PathLike) -> Path:
    """Write ``array`` as an idx file (gzip-compressed when the name ends in ``.gz``)."""
    codes = {v: k for k, v in _TYPES.items()}
    dtype = np.dtype(array.dtype).newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if dtype not in codes:
        raise ValueError(f"idx cannot hold values of type {array.dtype}")
    header = bytes([0, 0, codes[dtype], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path
