"""`gankit data download mnist` / `fashion-mnist`: the catalogue entries, and a download of the
real MNIST files from an HTTP server on 127.0.0.1 (the official host's path layout)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gankit.data import download
from gankit.data.config import DataConfig
from gankit.data.download import DATASETS, MARKER, download_dataset, get_dataset
from gankit.data.image_sets import build_image_set
from gankit.errors import DataError, GankitError

IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# The 60000 training images are not in the offline copy; the other three files are real.
OFFLINE = IDX_FILES[1:]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


class FileServer:
    """Serves a folder over HTTP and records the requested paths."""

    def __init__(self, folder: Path) -> None:
        self.requests: list[str] = []
        log = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                log.append(urlsplit(self.path).path)
                super().do_GET()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                         functools.partial(Handler, directory=str(folder)))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)


@pytest.fixture
def mirror(tmp_path: Path, shared_data: Path) -> Iterator[tuple[FileServer, Path]]:
    """An HTTP server whose /mnist/ holds the real MNIST files (the official URL layout)."""
    site = tmp_path / "site"
    (site / "mnist").mkdir(parents=True)
    for name in OFFLINE:
        shutil.copy(shared_data / "mnist" / name, site / "mnist" / name)
    server = FileServer(site)
    server.thread.start()
    try:
        yield server, site / "mnist"
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)


@pytest.fixture
def offline_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real catalogue entry (URLs and md5s) without the one file there is no copy of."""
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    monkeypatch.setattr(download.time, "sleep", lambda s: None)
    entry = DATASETS["mnist"]
    files = tuple(f for f in entry.files if f.filename in OFFLINE)
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(entry, files=files))


def test_catalogue_has_mnist_and_fashion_mnist_from_the_official_hosts(shared_data: Path):
    for name, host in (("mnist", "ossci-datasets.s3.amazonaws.com"),
                       ("fashion-mnist", "fashion-mnist.s3-website.eu-central-1.amazonaws.com")):
        info = get_dataset(name)
        assert info.kind == "mnist" and info.layout == "files" and info.url is None
        assert [f.filename for f in info.files] == list(IDX_FILES)
        assert {urlsplit(f.url).netloc for f in info.files} == {host}
        assert all(f.md5 and len(f.md5) == 32 for f in info.files)
    assert DATASETS["mnist"].files[0].url == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz")
    assert len({f.md5 for f in DATASETS["fashion-mnist"].files}
               | {f.md5 for f in DATASETS["mnist"].files}) == 8
    # the md5s of the catalogue are those of the real files
    by_name = {f.filename: f.md5 for f in DATASETS["mnist"].files}
    for name in OFFLINE:
        assert by_name[name] == md5(shared_data / "mnist" / name), name


def test_mnist_downloads_real_files_into_a_folder_training_reads(
        tmp_path: Path, mirror: tuple[FileServer, Path], offline_mnist: None):
    server, served = mirror
    root = tmp_path / "datasets"
    out = download_dataset("mnist", root, base_url=server.url, progress=False, timeout=5)
    assert out == root / "mnist"
    assert sorted(server.requests) == sorted(f"/mnist/{n}" for n in OFFLINE)
    assert sorted(p.name for p in out.iterdir()) == sorted([*OFFLINE, MARKER])
    for name in OFFLINE:  # placed as they are: still gzipped, byte for byte
        assert (out / name).read_bytes() == (served / name).read_bytes()
    assert sorted(p.name for p in root.iterdir()) == ["mnist"]  # no .partial left behind

    images = build_image_set(DataConfig(data=str(out), phase="test", preprocess="none"))
    assert len(images) == 10000
    assert (images.info.channels, images.info.size, images.info.num_classes) == (1, 28, 10)
    assert images[0]["image"].shape == (1, 28, 28) and images[0]["label"] == 7
    with pytest.raises(DataError, match="--phase test"):  # the labels alone are no images
        build_image_set(DataConfig(data=str(out), phase="train", preprocess="none"))

    again = download_dataset("mnist", root, base_url=server.url, progress=False, timeout=5)
    assert again == out and len(server.requests) == len(OFFLINE)  # complete: nothing fetched


def test_damaged_file_is_refused_by_its_md5_and_fetched_again_alone(
        tmp_path: Path, mirror: tuple[FileServer, Path], offline_mnist: None):
    server, served = mirror
    good = (served / "t10k-images-idx3-ubyte.gz").read_bytes()
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0xFF
    (served / "t10k-images-idx3-ubyte.gz").write_bytes(bytes(damaged))
    root = tmp_path / "datasets"
    with pytest.raises(GankitError) as info:
        download_dataset("mnist", root, base_url=server.url, progress=False, timeout=5)
    text = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in text and "corrupt" in text
    assert "md5" in text and hashlib.md5(damaged).hexdigest() in text
    assert "9fb629c4189551a2d022fa330f9573f3" in text  # what it should have been
    assert "run the command again" in text
    assert not (root / "mnist").exists()  # nothing where training would find it
    assert not list(root.rglob("t10k-images*"))  # the damaged copy is deleted

    (served / "t10k-images-idx3-ubyte.gz").write_bytes(good)  # the mirror is repaired
    server.requests.clear()
    out = download_dataset("mnist", root, base_url=server.url, progress=False, timeout=5)
    # files verified before the failure were kept; only the refused one and those after it
    # are fetched again
    assert "/mnist/train-labels-idx1-ubyte.gz" not in server.requests
    assert "/mnist/t10k-images-idx3-ubyte.gz" in server.requests
    assert (out / "t10k-images-idx3-ubyte.gz").read_bytes() == good


def test_files_placed_by_hand_are_used_without_network(
        tmp_path: Path, shared_data: Path, offline_mnist: None):
    root = tmp_path / "datasets"
    placed = root / ".partial" / "mnist"
    placed.mkdir(parents=True)
    for name in OFFLINE:
        shutil.copy(shared_data / "mnist" / name, placed / name)
    out = download_dataset("mnist", root, base_url="http://127.0.0.1:9", progress=False)
    assert sorted(p.name for p in out.iterdir()) == sorted([*OFFLINE, MARKER])
    assert not (root / ".partial").exists()
