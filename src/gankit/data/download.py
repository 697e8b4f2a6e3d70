"""Download and unpack the public pix2pix and CycleGAN datasets, MNIST and Fashion-MNIST.

Why not a shell script with ``wget``: downloads of several gigabytes break, so this one resumes
with HTTP Range requests, checks what it got before unpacking, refuses archives that would write
outside the target folder, and never leaves a half-unpacked dataset where training would find it.

Layout on disk, for ``root``::

    root/.partial/NAME.tar.gz.part   while downloading (kept on failure; the next call resumes)
    root/.partial/NAME.tar.gz        a complete download, also where a manual download goes
    root/NAME/                       the unpacked dataset, with a marker file once complete

Datasets made of several plain files (MNIST's four ``.gz`` idx files) download each file to
``root/.partial/NAME/FILE`` and are placed in ``root/NAME/`` as they are, not unpacked.

Names: "maps" is the pix2pix maps set (aligned A|B images); the CycleGAN version of the same
photos (trainA/trainB folders) is called "maps_cyclegan" ("cyclegan/maps" is accepted too).

Mirrors: ``base_url`` or the environment variable ``GANKIT_DATASET_MIRROR`` replaces the scheme
and host of the official URL and keeps its path, so a mirror at ``https://example.org/gan``
serves ``https://example.org/gan/pix2pix/datasets/facades.tar.gz``.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import logging
import os
import shutil
import socket
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from tqdm import tqdm

from gankit.errors import ConfigError, GankitError

log = logging.getLogger(__name__)

MIRROR_ENV = "GANKIT_DATASET_MIRROR"
MARKER = ".gankit-download.json"
PARTIAL_DIR = ".partial"
_CHUNK = 1 << 16
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")

_PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{}.tar.gz"
_CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{}.zip"
# The canonical idx files (the same bytes as LeCun's original site, whose downloads now need a
# login) and their md5s, as torchvision checks them.
_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/{}"
_FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{}"
_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
_FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset, for datasets made of several files (MNIST and friends)."""

    url: str
    md5: str | None = None
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return PurePosixPath(urlsplit(self.url).path).name


@dataclass(frozen=True)
class DatasetInfo:
    """A catalogue entry: where a dataset comes from and what it unpacks to.

    A dataset is either one archive at ``url`` or several plain files in ``files`` (each with
    its own checksum); archives are unpacked, plain files are placed in ``root/NAME`` as is.
    ``instructions`` marks a dataset that cannot be downloaded (licence), with what to do.
    """

    name: str
    url: str | None
    kind: str  # "pix2pix" | "cyclegan" | "mnist" (idx files, for the generative models)
    layout: str  # as DataConfig.layout: "aligned", "unaligned", or "files"
    size_mb: float  # approximate download size, for the user and the free-space check
    description: str
    sha256: str | None = None
    md5: str | None = None
    files: tuple[RemoteFile, ...] = ()
    archive_root: str | None = None  # folder inside the archive, when it differs from name
    expected: tuple[str, ...] = ()  # sub-folders training needs, checked after unpacking
    instructions: str | None = None

    def remote_files(self) -> tuple[RemoteFile, ...]:
        """The files to fetch: ``files``, or the single archive at ``url``."""
        if self.files:
            return self.files
        if self.url is None:
            return ()
        return (RemoteFile(self.url, md5=self.md5, sha256=self.sha256),)


def _pix2pix(name: str, size_mb: float, description: str) -> DatasetInfo:
    return DatasetInfo(
        name=name,
        url=_PIX2PIX_URL.format(name),
        kind="pix2pix",
        layout="aligned",
        size_mb=size_mb,
        description=description,
        expected=("train", "val"),
    )


def _cyclegan(
    name: str,
    size_mb: float,
    description: str,
    *,
    file: str | None = None,
    expected: tuple[str, ...] = ("trainA", "trainB", "testA", "testB"),
) -> DatasetInfo:
    file = file or name
    return DatasetInfo(
        name=name,
        url=_CYCLEGAN_URL.format(file),
        kind="cyclegan",
        layout="unaligned",
        size_mb=size_mb,
        description=description,
        archive_root=file,
        expected=expected,
    )


def _idx_files(name: str, url: str, md5s: dict[str, str], size_mb: float,
               description: str) -> DatasetInfo:
    """An MNIST-style dataset: four gzipped idx files, placed in ``root/NAME`` as they are
    (``gankit train dcgan --data datasets/mnist`` reads them directly)."""
    return DatasetInfo(
        name=name,
        url=None,
        kind="mnist",
        layout="files",
        size_mb=size_mb,
        description=description,
        files=tuple(RemoteFile(url.format(file), md5=md5) for file, md5 in md5s.items()),
    )


_CITYSCAPES_HELP = (
    "The Cityscapes dataset cannot be downloaded automatically because of its licence.\n"
    "1. Register at https://www.cityscapes-dataset.com and download gtFine_trainvaltest.zip "
    "(segmentation labels) and leftImg8bit_trainvaltest.zip (dashcam photos); unzip both.\n"
    "2. Pair each photo leftImg8bit/PHASE/CITY/X_leftImg8bit.png with its colour label "
    "gtFine/PHASE/CITY/X_gtFine_color.png (same X), resize both to 256x256 and save them side "
    "by side as one 512x256 image, photo on the left (A) and label on the right (B), into "
    "ROOT/cityscapes/train/ (from the train phase) and ROOT/cityscapes/test/ (from val), "
    "as datasets/prepare_cityscapes_dataset.py of junyanz/pytorch-CycleGAN-and-pix2pix does.\n"
    "3. Train labels -> photos with --direction BtoA."
)

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        _pix2pix("facades", 29, "400 building facades: label map | photo (CMP Facades)"),
        _pix2pix("maps", 239, "1096 Google Maps aerial photo | map pairs"),
        _pix2pix("edges2shoes", 2100, "50k shoe photos with their HED edges (edges | photo)"),
        _pix2pix("edges2handbags", 8600, "137k handbag photos with HED edges (edges | photo)"),
        _pix2pix("night2day", 1900, "20k webcam pictures: night | day of the same scene"),
        DatasetInfo(
            name="cityscapes",
            url=None,
            kind="pix2pix",
            layout="aligned",
            size_mb=11000,
            description="2975 street photos | semantic labels (licence: register first)",
            instructions=_CITYSCAPES_HELP,
        ),
        _cyclegan("apple2orange", 75, "unpaired photos of apples and oranges (ImageNet)"),
        _cyclegan("horse2zebra", 111, "unpaired photos of horses and zebras (ImageNet)"),
        _cyclegan("summer2winter_yosemite", 126, "Yosemite in summer and winter (Flickr)"),
        _cyclegan("monet2photo", 291, "Monet paintings and landscape photos"),
        _cyclegan("cezanne2photo", 267, "Cezanne paintings and landscape photos"),
        _cyclegan("ukiyoe2photo", 279, "ukiyo-e prints and landscape photos"),
        _cyclegan("vangogh2photo", 292, "Van Gogh paintings and landscape photos"),
        _cyclegan(
            "maps_cyclegan", 240, "the pix2pix maps photos, unpaired (trainA/trainB)", file="maps"
        ),
        _cyclegan("iphone2dslr_flower", 324, "flower photos: iPhone and DSLR (shallow focus)"),
        _cyclegan(
            "ae_photos",
            10,
            "a few photos to try pretrained style-transfer models on",
            expected=(),
        ),
        _idx_files("mnist", _MNIST_URL, _MNIST_MD5, 12,
                   "70k handwritten digits 0-9, 28x28 gray, with labels (idx files)"),
        _idx_files("fashion-mnist", _FASHION_MNIST_URL, _FASHION_MNIST_MD5, 31,
                   "70k Zalando clothing images in 10 classes, 28x28 gray (idx files)"),
    )
}

ALIASES: dict[str, str] = {"cyclegan/maps": "maps_cyclegan"}


def list_datasets() -> list[DatasetInfo]:
    """Every catalogue entry, pix2pix first, in catalogue order (for ``gankit data list``)."""
    return list(DATASETS.values())


def get_dataset(name: str) -> DatasetInfo:
    """The catalogue entry for ``name``; ConfigError listing the names when unknown."""
    info = DATASETS.get(ALIASES.get(name, name))
    if info is None:
        names = ", ".join(DATASETS)
        raise ConfigError(
            f"unknown dataset {name!r}; available datasets: {names} (see `gankit data list`)"
        )
    return info


def download_dataset(
    name: str,
    root: Path,
    *,
    base_url: str | None = None,
    progress: bool = True,
    force: bool = False,
    retries: int = 3,
    timeout: float = 30.0,
) -> Path:
    """Download, verify and unpack dataset ``name`` into ``root/NAME``; return that folder.

    Does nothing when the folder is already complete (unless ``force``). A broken transfer is
    retried ``retries`` times, resuming where it stopped; a failure keeps the partial file so
    that the next call resumes it. ``timeout`` is per network operation, in seconds.
    """
    info = get_dataset(name)
    if info.instructions is not None:
        raise GankitError(
            f"dataset {info.name!r} must be prepared by hand:\n"
            + info.instructions.replace("ROOT", str(Path(root)))
        )
    root = Path(root)
    target = root / info.name
    if (target / MARKER).is_file() and not force:
        log.info("dataset %s is already complete in %s", info.name, target)
        return target
    if target.exists() and not force:
        raise GankitError(
            f"{target} exists but is not a complete download by gankit (no {MARKER}); "
            "move it away, or pass force=True (--force) to replace it"
        )
    mirror = base_url if base_url is not None else os.environ.get(MIRROR_ENV) or None
    root.mkdir(parents=True, exist_ok=True)
    partial = root / PARTIAL_DIR
    partial.mkdir(exist_ok=True)
    _warn_if_low_space(root, info)

    downloaded: list[tuple[RemoteFile, Path]] = []
    try:
        for remote in info.remote_files():
            path = _download_path(info, remote, partial)
            if force:
                for stale in (path, _part(path)):
                    stale.unlink(missing_ok=True)
            url = _with_mirror(remote.url, mirror)
            if path.is_file():
                log.info("using the downloaded file %s", path)
            else:
                _fetch(url, path, progress=progress, retries=retries, timeout=timeout)
            _verify_checksum(remote, path)
            downloaded.append((remote, path))
    except BaseException:
        _remove_empty_dirs(partial)  # partial files with data in them stay for resuming
        raise

    if target.exists():  # force: the old copy goes only once the new one is verified
        shutil.rmtree(target)
    try:
        _install(info, downloaded, root, target)
    except _BadArchive:
        for _, path in downloaded:
            path.unlink(missing_ok=True)
        raise
    for _, path in downloaded:
        path.unlink(missing_ok=True)
    _remove_empty_dirs(partial)
    log.info("dataset %s is ready in %s", info.name, target)
    return target


# --------------------------------------------------------------------------- paths and URLs


def _download_path(info: DatasetInfo, remote: RemoteFile, partial: Path) -> Path:
    """Where a complete download lives: ``.partial/NAME.ext``, or ``.partial/NAME/FILE``."""
    if info.files:
        return partial / info.name / remote.filename
    filename = remote.filename
    suffix = next((s for s in _ARCHIVE_SUFFIXES if filename.endswith(s)), Path(filename).suffix)
    return partial / f"{info.name}{suffix}"


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def _with_mirror(url: str, mirror: str | None) -> str:
    if not mirror:
        return url
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return mirror.rstrip("/") + path


def _warn_if_low_space(root: Path, info: DatasetInfo) -> None:
    need = info.size_mb * 2.2 * 1e6  # the archive plus its unpacked copy, with some slack
    free = shutil.disk_usage(root).free
    if free < need:
        log.warning(
            "only %.0f MB free in %s; %s needs about %.0f MB (download and unpacked copy)",
            free / 1e6,
            root,
            info.name,
            need / 1e6,
        )


def _remove_empty_dirs(folder: Path) -> None:
    for sub in sorted(folder.glob("**/"), key=lambda p: len(p.parts), reverse=True):
        try:
            sub.rmdir()
        except OSError:
            pass


# --------------------------------------------------------------------------- HTTP


def _open_part(path: Path, mode: str):
    """Open the partial file; a seam so tests can simulate a full disk."""
    return open(path, mode)


def _fetch(url: str, dest: Path, *, progress: bool, retries: int, timeout: float) -> None:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming and retrying."""
    part = _part(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        try:
            complete = _fetch_once(url, part, progress=progress, timeout=timeout)
        except _Transient as exc:
            complete, reason = False, str(exc)
        else:
            reason = "the connection closed before the end of the file"
        if complete:
            os.replace(part, dest)
            return
        attempt += 1
        if attempt > retries:
            raise GankitError(
                f"downloading {url} failed: {reason}. The machine seems to be offline or the "
                f"server broke the connection. Run the same command again: the partial file "
                f"{part} is kept and the download resumes from it; or download the file by "
                f"hand and place it at {dest}."
            )
        wait = min(2.0 ** (attempt - 1), 10.0)
        log.warning("%s; retrying in %.0f s (%d/%d)", reason, wait, attempt, retries)
        time.sleep(wait)


class _Transient(Exception):
    """A failure worth retrying (broken connection, timeout mid-transfer)."""


def _fetch_once(url: str, part: Path, *, progress: bool, timeout: float) -> bool:
    """One request continuing ``part``; True when the whole file is there."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "gankit-downloader", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as exc:
        with exc:
            if exc.code == 416 and have:
                return _range_not_satisfiable(exc, part, have)
            raise _http_error(url, exc, part) from None
    except (URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, URLError) else exc
        if isinstance(reason, (socket.timeout, TimeoutError, ConnectionResetError)):
            raise _Transient(f"{url}: {reason}") from exc
        raise _offline_error(url, reason, part) from exc

    with response:
        total: int | None
        if response.status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != have:
                log.warning("server resumed at byte %s instead of %d; restarting", start, have)
                part.unlink(missing_ok=True)
                raise _Transient("the server answered the resume request wrongly")
            mode = "ab"
        else:
            if have:
                log.info("the server ignores resume requests; downloading %s from the start", url)
            have, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        _copy(response, part, mode, have, total, progress=progress, url=url)
    size = part.stat().st_size
    if total is None:
        return True  # no length announced: a clean end of stream is all we can check
    if size > total:
        part.unlink()
        raise _Transient(f"got {size} bytes but the server announced {total}; restarting")
    return size == total


def _copy(
    response: http.client.HTTPResponse,
    part: Path,
    mode: str,
    have: int,
    total: int | None,
    *,
    progress: bool,
    url: str,
) -> None:
    bar = tqdm(
        total=total,
        initial=have,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=PurePosixPath(urlsplit(url).path).name,
        disable=not progress,
        leave=False,
    )
    try:
        with bar, _open_part(part, mode) as out:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Transient(f"{url}: {exc or type(exc).__name__}") from exc
                if not chunk:
                    return
                out.write(chunk)
                bar.update(len(chunk))
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise GankitError(
                f"the disk is full while writing {part}; free some space (this dataset needs "
                f"about twice its download size) and run the command again: the partial file "
                "is kept and the download resumes from it"
            ) from exc
        raise


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes START-END/TOTAL`` -> (START, TOTAL); None where absent or ``*``."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    start = span.split("-")[0]
    return (
        int(start) if start.isdigit() else None,
        int(total) if total.isdigit() else None,
    )


def _range_not_satisfiable(exc: HTTPError, part: Path, have: int) -> bool:
    """416 on a resume: the part file is complete, or longer than the file (start over)."""
    _, total = _parse_content_range(exc.headers.get("Content-Range"))
    if total == have:
        return True
    part.unlink(missing_ok=True)
    raise _Transient("the partial file does not match the server's file; restarting")


def _http_error(url: str, exc: HTTPError, part: Path) -> GankitError:
    if exc.code == 404:
        return GankitError(
            f"{url} was not found (HTTP 404). The dataset may have moved: check for a newer "
            f"gankit, set {MIRROR_ENV} to a mirror, or download the file by hand and place it "
            f"at {part.with_suffix('')}"
        )
    return GankitError(
        f"the server refused {url} (HTTP {exc.code} {exc.reason}). Try again later (the "
        f"partial file {part} is kept and resumes), set {MIRROR_ENV} to a mirror, or download "
        f"the file by hand and place it at {part.with_suffix('')}"
    )


def _offline_error(url: str, reason: object, part: Path) -> GankitError:
    return GankitError(
        f"could not connect to download {url} ({reason}): the machine seems to be offline, "
        f"the name does not resolve, or the server refused the connection. Check the network "
        f"and run the command again (any partial file {part} is kept and the download "
        f"resumes), set {MIRROR_ENV} to a mirror, or download the file by hand and place it "
        f"at {part.with_suffix('')}"
    )


# --------------------------------------------------------------------------- verify and unpack


def _verify_checksum(remote: RemoteFile, path: Path) -> None:
    for algo, want in (("sha256", remote.sha256), ("md5", remote.md5)):
        if want is None:
            continue
        digest = hashlib.new(algo)
        with open(path, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
        got = digest.hexdigest()
        if got.lower() != want.lower():
            path.unlink()
            raise GankitError(
                f"{path.name} from {remote.url} is corrupt: its {algo} is {got}, expected "
                f"{want}. The file was deleted; run the command again to download it anew"
            )
        return


def _is_archive(path: Path) -> bool:
    return path.name.endswith(_ARCHIVE_SUFFIXES)


def _install(
    info: DatasetInfo, downloaded: list[tuple[RemoteFile, Path]], root: Path, target: Path
) -> None:
    """Unpack or copy into a temporary folder beside ``target``, then rename it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{info.name}.unpack-", dir=root))
    try:
        for _, path in downloaded:
            if _is_archive(path):
                _extract(path, tmp)
            else:
                shutil.copy2(path, tmp / path.name)
        content = _content_root(info, tmp)
        missing = [d for d in info.expected if not (content / d).is_dir()]
        if missing:
            log.warning(
                "%s has no %s folder after unpacking; training may not find its images",
                info.name,
                ", ".join(missing),
            )
        marker = {
            "name": info.name,
            "kind": info.kind,
            "layout": info.layout,
            "files": [{"url": r.url, "size": p.stat().st_size} for r, p in downloaded],
            "completed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (content / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        os.replace(content, target)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise GankitError(
                f"the disk is full while unpacking {info.name} into {root}; free some space "
                f"and run the command again (the download is kept in {root / PARTIAL_DIR})"
            ) from exc
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _content_root(info: DatasetInfo, tmp: Path) -> Path:
    """The unpacked folder holding the dataset: the archive's top folder, when it has one."""
    named = tmp / (info.archive_root or info.name)
    if named.is_dir():
        return named
    entries = [p for p in tmp.iterdir() if p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    if info.files:
        return tmp
    inner = tmp / "_content"
    inner.mkdir()
    for entry in entries:
        entry.rename(inner / entry.name)
    return inner


def _unsafe_reason(name: str) -> str | None:
    """Why an archive member name would escape the target folder, or None if it is safe."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return "an absolute path"
    if ".." in posix.split("/"):
        return "a '..' component"
    return None


class _BadArchive(GankitError):
    """An archive that must not be unpacked; the download is deleted so a retry starts clean."""


def _corrupt(archive: Path, exc: BaseException) -> GankitError:
    return _BadArchive(
        f"{archive.name} is not a readable archive ({exc}); it may be truncated or corrupt. "
        "It was deleted: run the command again to download it anew"
    )


def _extract(archive: Path, dest: Path) -> None:
    """Test that the archive lists cleanly, refuse unsafe members, then extract."""
    if archive.name.endswith(".zip"):
        _extract_zip(archive, dest)
    else:
        _extract_tar(archive, dest)


def _check_members(archive: Path, names: Iterable[str]) -> None:
    for name in names:
        reason = _unsafe_reason(name)
        if reason:
            raise _BadArchive(
                f"{archive.name} holds a member {name!r} with {reason}, which would be written "
                "outside the dataset folder; refusing to unpack it (path traversal). It is not "
                "the official dataset and was deleted: check the mirror or URL and try again"
            )


def _extract_tar(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            _check_members(archive, (m.name for m in members))
            for member in members:
                if not (member.isfile() or member.isdir()):
                    raise _BadArchive(
                        f"{archive.name} holds {member.name!r}, a link or special file; "
                        "datasets only hold folders and images, so it was refused and deleted"
                    )
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # Python < 3.10.12: the checks above stand in for the filter
                tar.extractall(dest, members=members)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise _corrupt(archive, exc) from exc
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise _corrupt(archive, exc) from exc


def _extract_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            _check_members(archive, (i.filename for i in infos))
            zf.extractall(dest)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise _corrupt(archive, exc) from exc
