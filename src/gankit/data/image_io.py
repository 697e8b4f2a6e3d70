"""Reading and writing images as float tensors in [-1, 1], keeping 16-bit precision.

Pillow reads 8-bit images and 16-bit grayscale (modes I;16*, I) itself, but silently drops
16-bit colour PNGs to 8 bits; those are decoded here by a small PNG reader (zlib + the five
PNG row filters), and written by the matching writer, so 16-bit RGB/RGBA survives a round
trip. 16-bit colour TIFFs are read with ``tifffile`` when it is installed (Pillow cannot).

Channel conversion on read: 1 = luminance (ITU-R 601-2 weights, as Pillow's "L"),
3 = RGB with any alpha composited onto white, 4 = RGBA (opaque images get alpha 1).
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from gankit.atomic import atomic_open
from gankit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP",
            ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_BAD_FILE_HINT = ("re-download or replace it, delete it, or pass --skip-bad-files to leave "
                  "unreadable images out")
_warned_tiff = False


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a file name with one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


# --- reading ---------------------------------------------------------------------------------
def load_pil(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode an image with Pillow; problems become a :class:`DataError`."""
    path = Path(path)
    _check_exists(path)
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except Exception as exc:  # noqa: BLE001 - any decoder failure means an unreadable file
        raise _unreadable(path, exc) from exc


def load_array(path: str | os.PathLike) -> np.ndarray:
    """An image as float32 HxWxC in [0, 1] with its own channels: 1 (gray), 2 (gray+alpha),
    3 (RGB) or 4 (RGBA). 16-bit files are scaled by 65535, 8-bit by 255."""
    path = Path(path)
    _check_exists(path)
    try:
        return _load_array(path)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure means an unreadable file
        raise _unreadable(path, exc) from exc


def convert_channels(arr: np.ndarray, channels: int) -> np.ndarray:
    """Convert an HxWxC [0, 1] array from :func:`load_array` to 1, 3 or 4 channels."""
    if channels not in (1, 3, 4):
        raise ConfigError(f"images can be read with 1, 3 or 4 channels, not {channels}")
    c = arr.shape[2]
    if c == channels:
        return arr
    if c in (2, 4) and channels != 4:  # drop alpha by compositing onto white
        color, alpha = arr[..., :-1], arr[..., -1:]
        arr = color * alpha + (1.0 - alpha)
        c -= 1
        if c == channels:
            return arr
    if channels == 1:  # c == 3
        return (arr @ _LUMA)[..., None].astype(np.float32)
    if channels == 3:  # c == 1
        return np.repeat(arr, 3, axis=2)
    # channels == 4
    if c == 2:
        return np.concatenate([np.repeat(arr[..., :1], 3, axis=2), arr[..., 1:]], axis=2)
    if c == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.concatenate([arr, np.ones_like(arr[..., :1])], axis=2)


def array_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """HxWxC [0, 1] array -> float32 CxHxW tensor in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32))
    return t.mul_(2.0).sub_(1.0)


def read_image(path: str | os.PathLike, channels: int) -> torch.Tensor:
    """Read an image as a float32 CxHxW tensor in [-1, 1] with ``channels`` (1, 3 or 4)."""
    return array_to_tensor(convert_channels(load_array(path), channels))


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise DataError(
            f"image file not found: {path}; check the dataset folder, or re-download the "
            "dataset (gankit data download NAME)"
        )


def _unreadable(path: Path, exc: BaseException) -> DataError:
    return DataError(f"cannot read image {path} ({type(exc).__name__}: {exc}); the file is "
                     f"corrupt, truncated or not an image: {_BAD_FILE_HINT}")


def _load_array(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        mode = im.mode
        if im.format == "PNG" and mode in ("RGB", "RGBA", "LA"):
            header = _png_header(path)
            if header is not None and header[2] == 16:
                return _scale(_decode_png(path.read_bytes()))
        if im.format == "TIFF" and mode in ("RGB", "RGBA") and _tiff_bits(im) > 8:
            wide = _read_tiff_wide(path)
            if wide is not None:
                return wide
        im.load()
        return pil_to_array(im)


def pil_to_array(im: Image.Image) -> np.ndarray:
    """A PIL image -> HxWxC float32 in [0, 1], the same way a file is read: 16-bit gray is
    scaled by 65535, float images are taken to be in [0, 1], palettes and odd modes converted."""
    mode = im.mode
    if mode == "P" or mode == "PA":
        has_alpha = "transparency" in im.info or mode == "PA" or (
            im.palette is not None and im.palette.mode == "RGBA")
        im = im.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("L", "RGB") and "transparency" in im.info:
        im = im.convert("RGBA")
    elif mode == "1":
        im = im.convert("L")
    elif mode == "La":
        im = im.convert("LA")
    elif mode == "RGBa":
        im = im.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA", "I", "F") and not mode.startswith("I;16"):
        im = im.convert("RGB")  # CMYK, YCbCr, RGBX, ...
    arr = np.asarray(im)
    if arr.dtype.kind in "iu" and arr.dtype != np.uint8:
        # I;16 / I: 16-bit values (Pillow opens 16-bit grayscale as one of these)
        arr = np.clip(arr.astype(np.float32) * np.float32(1 / 65535), 0.0, 1.0)
    return scale_array(arr)


def scale_array(array: np.ndarray) -> np.ndarray:
    """uint8 / 255, uint16 / 65535, floats taken to be in [0, 1] -> HxWxC float32 in [0, 1]."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        out = array.astype(np.float32) * np.float32(1 / 255)
    elif array.dtype == np.uint16:
        out = array.astype(np.float32) * np.float32(1 / 65535)
    elif array.dtype == np.bool_ or array.dtype.kind == "f":
        out = np.clip(array.astype(np.float32), 0.0, 1.0)
    else:
        raise DataError(f"cannot use an image array of dtype {array.dtype}: give uint8, "
                        "uint16 or floats in [0, 1]")
    if out.ndim == 2:
        out = out[..., None]
    if out.ndim != 3 or out.shape[2] not in (1, 2, 3, 4):
        raise DataError(f"cannot use an image array of shape {array.shape}: give HxW or HxWxC "
                        "with C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA)")
    return out


def image_to_tensor(image: Image.Image | np.ndarray, channels: int) -> torch.Tensor:
    """An in-memory PIL image or HxW[xC] array -> CxHxW in [-1, 1], exactly as
    :func:`read_image` converts the same picture read from a file."""
    array = pil_to_array(image) if isinstance(image, Image.Image) else scale_array(image)
    return array_to_tensor(convert_channels(array, channels))


def _scale(arr: np.ndarray) -> np.ndarray:
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0
    return arr.astype(np.float32) * np.float32(1 / scale)


def _tiff_bits(im: Image.Image) -> int:
    bits = getattr(im, "tag_v2", {}).get(258, 8)
    return max(bits) if isinstance(bits, tuple) else int(bits)


def _read_tiff_wide(path: Path) -> np.ndarray | None:
    """A 16-bit colour TIFF via tifffile if installed, else None (Pillow reads 8 bits)."""
    global _warned_tiff
    try:
        import tifffile
    except ImportError:
        if not _warned_tiff:
            log.warning("%s is a 16-bit colour TIFF; Pillow reads it with 8 bits. Install "
                        "tifffile (pip install tifffile) to keep full precision.", path)
            _warned_tiff = True
        return None
    arr = tifffile.imread(path)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.dtype.kind == "f":
        return np.clip(arr.astype(np.float32), 0.0, 1.0)
    if arr.dtype == np.uint8:
        return _scale(arr)
    return np.clip(arr.astype(np.float32) / 65535.0, 0.0, 1.0)


# --- a small PNG codec for 8/16-bit gray, gray+alpha, RGB and RGBA --------------------------
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {0: 1, 4: 2, 2: 3, 6: 4}  # PNG colour type -> channels
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))


def _png_header(path: Path) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) from the IHDR chunk."""
    with open(path, "rb") as f:
        head = f.read(29)
    if len(head) < 29 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return width, height, depth, ctype, interlace


def _decode_png(data: bytes) -> np.ndarray:
    """Decode a non-palette 8- or 16-bit PNG to HxWxC uint8/uint16 (C = 1, 2, 3 or 4)."""
    if data[:8] != _PNG_SIGNATURE:
        raise ValueError("not a PNG file")
    pos, idat, header = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = data[pos + 8 + length:pos + 12 + length]
        if len(body) < length or len(crc) < 4:
            raise ValueError("PNG file is truncated")
        if zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            raise ValueError(f"PNG chunk {kind.decode('latin-1')} has a bad checksum")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    else:
        raise ValueError("PNG file is truncated (no IEND chunk)")
    if header is None:
        raise ValueError("PNG file has no IHDR chunk")
    width, height, depth, ctype, _, _, interlace = header
    if depth not in (8, 16) or ctype not in _COLOR_TYPES:
        raise ValueError(f"unsupported PNG bit depth {depth} / colour type {ctype}")
    channels = _COLOR_TYPES[ctype]
    bpp = channels * depth // 8
    raw = zlib.decompress(b"".join(idat))
    if not interlace:
        rows, _ = _unfilter(raw, 0, width, height, bpp)
        return _bytes_to_pixels(rows, width, height, channels, depth)
    out = np.zeros((height, width, channels), np.uint16 if depth == 16 else np.uint8)
    offset = 0
    for x0, y0, dx, dy in _ADAM7:
        pw, ph = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if pw <= 0 or ph <= 0:
            continue
        rows, offset = _unfilter(raw, offset, pw, ph, bpp)
        out[y0::dy, x0::dx] = _bytes_to_pixels(rows, pw, ph, channels, depth)
    return out


def _bytes_to_pixels(rows: np.ndarray, w: int, h: int, channels: int, depth: int) -> np.ndarray:
    if depth == 16:
        return rows.view(">u2").reshape(h, w, channels).astype(np.uint16)
    return rows.reshape(h, w, channels)


def _unfilter(raw: bytes, offset: int, width: int, height: int, bpp: int
              ) -> tuple[np.ndarray, int]:
    """Undo the PNG row filters of one (sub-)image starting at ``offset`` in ``raw``."""
    stride = width * bpp
    end = offset + height * (stride + 1)
    if len(raw) < end:
        raise ValueError("PNG image data is truncated")
    lines = np.frombuffer(raw, np.uint8, count=end - offset, offset=offset)
    lines = lines.reshape(height, stride + 1)
    out = np.empty((height, stride), np.uint8)
    prior = np.zeros(stride, np.uint8)
    for y in range(height):
        kind, line = lines[y, 0], lines[y, 1:]
        if kind == 0:
            out[y] = line
        elif kind == 1:  # Sub: running sum of each byte lane, modulo 256
            out[y] = np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint8).reshape(-1)
        elif kind == 2:  # Up
            out[y] = line + prior
        elif kind in (3, 4):  # Average / Paeth depend on the byte just decoded: loop
            out[y] = np.frombuffer(_unfilter_sequential(kind, line.tobytes(), prior.tobytes(),
                                                        bpp), np.uint8)
        else:
            raise ValueError(f"bad PNG row filter type {kind}")
        prior = out[y]
    return out, end


def _unfilter_sequential(kind: int, line: bytes, prior: bytes, bpp: int) -> bytearray:
    cur = bytearray(len(line))
    if kind == 3:
        for i in range(len(line)):
            left = cur[i - bpp] if i >= bpp else 0
            cur[i] = (line[i] + ((left + prior[i]) >> 1)) & 0xFF
        return cur
    for i in range(len(line)):
        if i >= bpp:
            a, c = cur[i - bpp], prior[i - bpp]
        else:
            a = c = 0
        b = prior[i]
        pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
        pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        cur[i] = (line[i] + pred) & 0xFF
    return cur


def _encode_png(arr: np.ndarray, filter_type: int = 1, level: int = 6) -> bytes:
    """Encode HxWxC (C = 1..4) uint8 or uint16 pixels as a PNG with one row filter type."""
    height, width, channels = arr.shape
    depth = 16 if arr.dtype == np.uint16 else 8
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    data = arr.astype(">u2") if depth == 16 else arr.astype(np.uint8)
    rows = np.ascontiguousarray(data).view(np.uint8).reshape(height, -1)
    bpp = channels * depth // 8
    left = np.zeros_like(rows)
    left[:, bpp:] = rows[:, :-bpp]
    up = np.zeros_like(rows)
    up[1:] = rows[:-1]
    if filter_type == 0:
        filtered = rows
    elif filter_type == 1:
        filtered = rows - left
    elif filter_type == 2:
        filtered = rows - up
    elif filter_type == 3:
        filtered = rows - ((left.astype(np.uint16) + up) >> 1).astype(np.uint8)
    elif filter_type == 4:
        upleft = np.zeros_like(rows)
        upleft[1:, bpp:] = rows[:-1, :-bpp]
        a, b, c = (x.astype(np.int16) for x in (left, up, upleft))
        pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
        pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c)).astype(np.uint8)
        filtered = rows - pred
    else:
        raise ValueError(f"PNG filter type must be 0..4, not {filter_type}")
    body = np.concatenate([np.full((height, 1), filter_type, np.uint8), filtered], axis=1)

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0)
    return (_PNG_SIGNATURE + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(body.tobytes(), level)) + chunk(b"IEND", b""))


# --- writing ---------------------------------------------------------------------------------
def _to_hwc01(tensor: torch.Tensor) -> np.ndarray:
    t = tensor.detach().to("cpu", torch.float32)
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"save_image takes one image (CxHxW or 1xCxHxW), got {tuple(t.shape)}")
        t = t[0]
    if t.dim() == 2:
        t = t[None]
    if t.dim() != 3 or t.shape[0] not in (1, 3, 4):
        raise ValueError(f"expected a CxHxW image with 1, 3 or 4 channels, got {tuple(t.shape)}")
    t = torch.nan_to_num(t, nan=0.0)
    return ((t.clamp(-1.0, 1.0) + 1.0) * 0.5).permute(1, 2, 0).numpy()


def _quantize(arr01: np.ndarray, bits: int) -> np.ndarray:
    top = 65535.0 if bits == 16 else 255.0
    return np.rint(arr01 * top).astype(np.uint16 if bits == 16 else np.uint8)


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """An 8-bit Pillow image (L, RGB or RGBA) of a CxHxW tensor in [-1, 1], for display."""
    arr = _quantize(_to_hwc01(tensor), 8)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[arr.shape[2]]
    return Image.fromarray(arr[..., 0] if mode == "L" else arr, mode)


def save_image(tensor: torch.Tensor, path: str | os.PathLike, bit_depth: int = 8) -> Path:
    """Save a CxHxW (or 1xCxHxW) tensor in [-1, 1] as PNG, JPEG, TIFF, BMP or WebP.

    1 channel is written as a grayscale image (L, or I;16 at 16 bits), 3 as RGB, 4 as RGBA
    (JPEG has no alpha: RGBA is composited onto white). ``bit_depth=16`` needs PNG (any channel
    count; colour through the built-in PNG writer) or TIFF (grayscale; colour needs tifffile).
    The file is written to a temporary name and renamed, so it is never left half-written.
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"cannot save {path}: use one of the extensions "
                          f"{', '.join(sorted(_FORMATS))}")
    if bit_depth not in (8, 16):
        raise ConfigError(f"bit depth must be 8 or 16, not {bit_depth}")
    arr01 = _to_hwc01(tensor)
    channels = arr01.shape[2]
    if fmt == "JPEG" and channels == 4:
        arr01 = convert_channels(arr01, 3)
    if bit_depth == 16 and fmt not in ("PNG", "TIFF"):
        raise ConfigError(f"cannot save {path} with 16 bits per channel: {fmt} stores 8 bits; "
                          "use a .png (or .tif) file name, or bit depth 8")
    with atomic_open(path) as f:
        if bit_depth == 16:
            _write16(_quantize(arr01, 16), fmt, f, path)
        else:
            pil = to_pil(torch.from_numpy(arr01.transpose(2, 0, 1) * 2.0 - 1.0))
            pil.save(f, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    return path


def _write16(arr: np.ndarray, fmt: str, f: BinaryIO, path: Path) -> None:
    if arr.shape[2] == 1:
        Image.fromarray(arr[..., 0]).save(f, format=fmt)  # mode I;16
    elif fmt == "PNG":
        f.write(_encode_png(arr))
    else:
        try:
            import tifffile
        except ImportError:
            raise ConfigError(f"cannot save {path} as a 16-bit colour TIFF without tifffile: "
                              "pip install tifffile, or use a .png file name") from None
        tifffile.imwrite(f, arr, photometric="rgb")
