"""What the server accepts, and the one clear refusal for everything else.

Upload size is checked while the body streams in (413 before it is all read), the image size
from the file header before any pixel is decoded (413; a small PNG can claim 100000x100000
pixels), the type from the bytes themselves as well as the declared content type (415), and
decoding errors give 400 with the decoder's reason. Nothing a client sends reaches the
network unless it decoded into an image within the limits.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import torch
from PIL import Image

from gankit.data.image_io import image_to_tensor

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
ACCEPTED_TYPES = ("image/png", "image/jpeg")
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}
# Declared types that say nothing about the content: the bytes decide.
_UNSPECIFIC = ("", "application/octet-stream", "binary/octet-stream")


class RequestError(Exception):
    """A request the server refuses: an HTTP status and a message that says how to fix it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 10 * 2**20
    max_pixels: int = 2048 * 2048
    max_samples: int = 64  # POST /sample: images per request (their pixels count as well)

    def as_dict(self) -> dict[str, object]:
        return {"max_upload_bytes": self.max_upload_bytes, "max_pixels": self.max_pixels,
                "max_samples": self.max_samples, "content_types": list(ACCEPTED_TYPES)}

    def too_large(self, size: int) -> RequestError:
        return RequestError(
            413, f"the upload is larger than the limit of {_mb(self.max_upload_bytes)} "
            f"({size} bytes or more); send a smaller image, or start the server with a larger "
            "--max-upload-mb"
        )


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n} bytes"


def media_type(header: str | None) -> str:
    """``image/PNG; charset=x`` -> ``image/png`` (aliases mapped to the standard name)."""
    value = (header or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(value, value)


def sniff(data: bytes) -> str | None:
    if data.startswith(PNG_SIGNATURE):
        return "image/png"
    if data.startswith(JPEG_SIGNATURE):
        return "image/jpeg"
    return None


def check_declared_type(declared: str | None) -> None:
    """415 for a declared type that is neither an accepted image type nor unspecific."""
    kind = media_type(declared)
    if kind not in ACCEPTED_TYPES and kind not in _UNSPECIFIC:
        raise RequestError(415, f"content type {kind!r} is not accepted; send a PNG or JPEG "
                           f"image ({' or '.join(ACCEPTED_TYPES)})")


def decode_image(data: bytes, declared: str | None, limits: Limits, channels: int
                 ) -> torch.Tensor:
    """Upload bytes -> a (channels, H, W) tensor in [-1, 1], or a :class:`RequestError`."""
    if not data:
        raise RequestError(400, "the upload is empty; send a PNG or JPEG image")
    if len(data) > limits.max_upload_bytes:
        raise limits.too_large(len(data))
    check_declared_type(declared)
    kind = sniff(data)
    if kind is None:
        raise RequestError(415, f"the upload is not a PNG or JPEG image (it starts with "
                           f"{data[:8]!r}); send a PNG or JPEG file")
    name = "PNG" if kind == "image/png" else "JPEG"
    try:
        # Only the header is read here: the size is known before any pixel is decoded.
        image = Image.open(io.BytesIO(data), formats=[name])
        width, height = image.size
        if width * height > limits.max_pixels:
            raise RequestError(
                413, f"the image is {width}x{height} = {width * height} pixels; the limit "
                f"is {limits.max_pixels} pixels: resize it, or start the server with a "
                "larger --max-pixels"
            )
        image.load()
        return image_to_tensor(image, channels)
    except RequestError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard, before ours
        raise RequestError(413, f"the image is too large ({exc}); the limit is "
                           f"{limits.max_pixels} pixels: resize it") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure means a corrupt image
        raise RequestError(400, f"the {name} image is corrupt or truncated and cannot be "
                           f"decoded ({type(exc).__name__}: {str(exc)[:160]}); send the file "
                           "again or export it anew") from None
