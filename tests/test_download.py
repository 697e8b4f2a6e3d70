"""Dataset download against a real HTTP server on 127.0.0.1 serving official-layout archives."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import random
import socket
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from gankit.data import download
from gankit.data.download import (
    DATASETS,
    MARKER,
    DatasetInfo,
    RemoteFile,
    download_dataset,
    get_dataset,
    list_datasets,
)
from gankit.errors import ConfigError, GankitError

PIX2PIX_PATH = "/pix2pix/datasets/facades.tar.gz"
CYCLEGAN_PATH = "/cyclegan/datasets/horse2zebra.zip"


# --------------------------------------------------------------------------- archives


def _jpeg(width: int, height: int, value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (value, 255 - value, 7)).save(buf, format="JPEG")
    return buf.getvalue()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


# Aligned A|B images as in the official pix2pix tarball: facades/{train,val,test}/N.jpg.
# Incompressible padding (an APP-free tail after the JPEG) makes the archive ~280 kB, big enough
# to be cut at several points.
FACADES_MEMBERS = {
    f"facades/{phase}/{i}.jpg": _jpeg(32, 16, 40 * i)
    + random.Random(f"{phase}{i}").randbytes(30000)
    for phase in ("train", "val", "test")
    for i in range(1, 4)
}
FACADES = _tar_gz(FACADES_MEMBERS)
HORSE2ZEBRA_MEMBERS = {
    f"horse2zebra/{split}/{i}.jpg": _jpeg(16, 16, 30 * i)
    for split in ("trainA", "trainB", "testA", "testB")
    for i in range(2)
}
HORSE2ZEBRA = _zip(HORSE2ZEBRA_MEMBERS)


# --------------------------------------------------------------------------- server


class Server:
    """A ThreadingHTTPServer with a request log and switchable misbehaviour."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.ignore_range = False
        self.drop_first = False  # the first full request sends half the body, then hangs up
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                if rng and not server.ignore_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                    self.send_header("Content-Length", str(len(data) - start))
                    self.end_headers()
                    self.wfile.write(data[start:])
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if server.drop_first:
                    server.drop_first = False
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def full_requests(self, path: str) -> list[str | None]:
        return [rng for p, rng in self.requests if p == path]


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.files[PIX2PIX_PATH] = FACADES
    srv.files[CYCLEGAN_PATH] = HORSE2ZEBRA
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_mirror_env_and_no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    monkeypatch.setattr(download.time, "sleep", lambda s: None)


def fetch(name: str, root: Path, srv: Server, **kw: object) -> Path:
    return download_dataset(name, root, base_url=srv.url, progress=False, timeout=5, **kw)


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER
    }


def strip_top(members: dict[str, bytes]) -> dict[str, bytes]:
    return {name.split("/", 1)[1]: data for name, data in members.items()}


# --------------------------------------------------------------------------- catalogue


def test_catalogue_has_the_official_datasets_and_urls() -> None:
    names = [d.name for d in list_datasets()]
    for name in (
        "facades",
        "maps",
        "edges2shoes",
        "edges2handbags",
        "night2day",
        "cityscapes",
        "apple2orange",
        "horse2zebra",
        "summer2winter_yosemite",
        "monet2photo",
        "cezanne2photo",
        "ukiyoe2photo",
        "vangogh2photo",
        "maps_cyclegan",
        "iphone2dslr_flower",
        "ae_photos",
    ):
        assert name in names
    assert len(names) == len(set(names))
    assert DATASETS["facades"].url == (
        "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz"
    )
    assert DATASETS["maps"].kind == "pix2pix" and DATASETS["maps"].layout == "aligned"
    cmaps = get_dataset("cyclegan/maps")
    assert cmaps is DATASETS["maps_cyclegan"]
    assert cmaps.url == "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/maps.zip"
    assert cmaps.kind == "cyclegan" and cmaps.layout == "unaligned"


def test_unknown_dataset_is_a_config_error_listing_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="horse2zebra") as info:
        download_dataset("horse2zeebra", tmp_path, progress=False)
    assert "facades" in str(info.value)
    assert not any(tmp_path.iterdir())


def test_cityscapes_gives_instructions_and_downloads_nothing(tmp_path: Path) -> None:
    with pytest.raises(GankitError) as info:
        download_dataset("cityscapes", tmp_path, base_url="http://127.0.0.1:9", progress=False)
    text = str(info.value)
    for needle in (
        "cityscapes-dataset.com",
        "gtFine_trainvaltest.zip",
        "leftImg8bit_trainvaltest.zip",
        "side by side",
        str(tmp_path / "cityscapes"),
    ):
        assert needle in text
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- happy paths


def test_pix2pix_download_unpacks_official_layout(tmp_path: Path, server: Server) -> None:
    out = fetch("facades", tmp_path, server)
    assert out == tmp_path / "facades"
    assert tree(out) == strip_top(FACADES_MEMBERS)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["test", "train", "val"]
    assert (out / MARKER).is_file()
    # nothing else left behind: no archive, no partial folder, no temporary unpack folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["facades"]
    assert server.full_requests(PIX2PIX_PATH) == [None]


def test_cyclegan_zip_unpacks_trainA_trainB(
    tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    out = download_dataset("horse2zebra", tmp_path, base_url=server.url, progress=True, timeout=5)
    assert "horse2zebra.zip" in capsys.readouterr().err  # the tqdm bar
    assert tree(out) == strip_top(HORSE2ZEBRA_MEMBERS)
    assert {p.name for p in out.iterdir() if p.is_dir()} == {"trainA", "trainB", "testA", "testB"}


def test_maps_cyclegan_lands_beside_pix2pix_maps(tmp_path: Path, server: Server) -> None:
    members = {f"maps/{s}/1.jpg": _jpeg(8, 8, 9) for s in ("trainA", "trainB", "testA", "testB")}
    server.files["/cyclegan/datasets/maps.zip"] = _zip(members)
    out = fetch("cyclegan/maps", tmp_path, server)
    assert out == tmp_path / "maps_cyclegan"
    assert tree(out) == strip_top(members)


def test_second_call_is_a_no_op_and_force_downloads_again(tmp_path: Path, server: Server) -> None:
    out = fetch("facades", tmp_path, server)
    (out / "train" / "1.jpg").write_bytes(b"edited")
    assert fetch("facades", tmp_path, server) == out
    assert len(server.requests) == 1
    assert (out / "train" / "1.jpg").read_bytes() == b"edited"
    fetch("facades", tmp_path, server, force=True)
    assert len(server.requests) == 2
    assert tree(out) == strip_top(FACADES_MEMBERS)


def test_mirror_env_var_is_used(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(download.MIRROR_ENV, server.url + "/")
    out = download_dataset("facades", tmp_path, progress=False, timeout=5)
    assert tree(out) == strip_top(FACADES_MEMBERS)
    assert server.full_requests(PIX2PIX_PATH) == [None]


def test_checksum_is_checked_when_the_catalogue_has_one(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = dataclasses.replace(DATASETS["facades"], sha256=hashlib.sha256(FACADES).hexdigest())
    monkeypatch.setitem(DATASETS, "facades", good)
    assert tree(fetch("facades", tmp_path, server)) == strip_top(FACADES_MEMBERS)


def test_multi_file_dataset_with_md5s(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shape the MNIST entries will take: several plain files, each with an md5."""
    blobs = {"/tiny/images.gz": b"images" * 100, "/tiny/labels.gz": b"labels" * 50}
    server.files.update(blobs)
    files = tuple(
        RemoteFile(f"https://example.invalid{p}", md5=hashlib.md5(b).hexdigest())
        for p, b in blobs.items()
    )
    info = DatasetInfo("tiny", None, "mnist", "files", 0.01, "test", files=files)
    monkeypatch.setitem(DATASETS, "tiny", info)
    out = fetch("tiny", tmp_path, server)
    assert tree(out) == {p.split("/")[-1]: b for p, b in blobs.items()}
    bad = dataclasses.replace(
        info, name="tiny2", files=(dataclasses.replace(files[0], md5="0" * 32), files[1])
    )
    monkeypatch.setitem(DATASETS, "tiny2", bad)
    with pytest.raises(GankitError, match="md5"):
        fetch("tiny2", tmp_path, server)
    assert not (tmp_path / "tiny2").exists()


# --------------------------------------------------------------------------- resume


def test_dropped_connection_resumes_with_range(tmp_path: Path, server: Server) -> None:
    server.drop_first = True
    out = fetch("facades", tmp_path, server)
    ranges = server.full_requests(PIX2PIX_PATH)
    assert ranges == [None, f"bytes={len(FACADES) // 2}-"]
    assert tree(out) == strip_top(FACADES_MEMBERS)


def test_partial_file_from_an_earlier_run_resumes(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    part = tmp_path / ".partial" / "facades.tar.gz.part"
    part.parent.mkdir(parents=True)
    cut = 12345
    part.write_bytes(FACADES[:cut])
    seen: list[bytes] = []
    original_open = download._open_part

    def spy(path: Path, mode: str):
        fh = original_open(path, mode)
        seen.append(mode.encode())
        return fh

    monkeypatch.setattr(download, "_open_part", spy)
    out = fetch("facades", tmp_path, server)
    assert server.full_requests(PIX2PIX_PATH) == [f"bytes={cut}-"]
    assert seen == [b"ab"]
    assert tree(out) == strip_top(FACADES_MEMBERS)


def test_failed_run_keeps_partial_and_next_run_resumes_byte_identical(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.drop_first = True
    with pytest.raises(GankitError, match="resumes") as info:
        fetch("facades", tmp_path, server, retries=0)
    part = tmp_path / ".partial" / "facades.tar.gz.part"
    assert str(part) in str(info.value)
    assert part.read_bytes() == FACADES[: len(FACADES) // 2]
    assert not (tmp_path / "facades").exists()
    # capture the finished archive before it is unpacked and deleted
    captured: dict[str, bytes] = {}
    original = download._install

    def capture(info, downloaded, root, target):  # type: ignore[no-untyped-def]
        captured["archive"] = downloaded[0][1].read_bytes()
        original(info, downloaded, root, target)

    monkeypatch.setattr(download, "_install", capture)
    fetch("facades", tmp_path, server)
    assert server.full_requests(PIX2PIX_PATH)[-1] == f"bytes={len(FACADES) // 2}-"
    assert captured["archive"] == FACADES


def test_server_ignoring_range_restarts_from_zero(tmp_path: Path, server: Server) -> None:
    server.ignore_range = True
    part = tmp_path / ".partial" / "facades.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(FACADES[:5000])
    out = fetch("facades", tmp_path, server)
    assert server.full_requests(PIX2PIX_PATH) == ["bytes=5000-"]  # asked, got a 200
    assert tree(out) == strip_top(FACADES_MEMBERS)  # not the first 5000 bytes twice


def test_complete_partial_file_gets_416_and_is_used(tmp_path: Path, server: Server) -> None:
    part = tmp_path / ".partial" / "facades.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(FACADES)
    out = fetch("facades", tmp_path, server)
    assert server.full_requests(PIX2PIX_PATH) == [f"bytes={len(FACADES)}-"]
    assert tree(out) == strip_top(FACADES_MEMBERS)


def test_manually_placed_archive_is_used_without_network(tmp_path: Path) -> None:
    placed = tmp_path / ".partial" / "facades.tar.gz"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(FACADES)
    out = download_dataset("facades", tmp_path, base_url="http://127.0.0.1:9", progress=False)
    assert tree(out) == strip_top(FACADES_MEMBERS)


# --------------------------------------------------------------------------- failures


def test_checksum_mismatch_unpacks_nothing(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = dataclasses.replace(DATASETS["facades"], sha256="ab" * 32)
    monkeypatch.setitem(DATASETS, "facades", bad)
    with pytest.raises(GankitError, match="sha256") as info:
        fetch("facades", tmp_path, server)
    assert hashlib.sha256(FACADES).hexdigest() in str(info.value)
    assert not (tmp_path / "facades").exists()
    assert not list(tmp_path.rglob("*.jpg"))
    assert not (tmp_path / ".partial" / "facades.tar.gz").exists()  # deleted: retry is clean


@pytest.mark.parametrize(
    "evil", ["../escaped.txt", "/tmp/gankit-absolute-escape.txt", "facades/../../escaped.txt"]
)
@pytest.mark.parametrize("fmt", ["tar", "zip"])
def test_path_traversal_archive_is_rejected(
    tmp_path: Path, server: Server, evil: str, fmt: str
) -> None:
    root = tmp_path / "root"
    members = {"facades/train/1.jpg": b"ok", evil: b"pwned"}
    if fmt == "tar":
        server.files[PIX2PIX_PATH] = _tar_gz(members)
        name = "facades"
    else:
        server.files[CYCLEGAN_PATH] = _zip(
            {k.replace("facades", "horse2zebra"): v for k, v in members.items()}
        )
        name = "horse2zebra"
    with pytest.raises(GankitError, match="outside the dataset folder"):
        fetch(name, root, server)
    assert not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/gankit-absolute-escape.txt").exists()
    assert not (root / name).exists()
    assert not list(root.rglob("*ok*")) and not list(root.glob(".*unpack*"))


def test_tar_symlink_is_rejected(tmp_path: Path, server: Server) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        link = tarfile.TarInfo("facades/train/link.jpg")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    server.files[PIX2PIX_PATH] = buf.getvalue()
    with pytest.raises(GankitError, match="link"):
        fetch("facades", tmp_path, server)
    assert not (tmp_path / "facades").exists()


def test_corrupt_archive_is_a_clear_error(tmp_path: Path, server: Server) -> None:
    server.files[PIX2PIX_PATH] = FACADES[: len(FACADES) // 3]  # complete per server, truncated
    with pytest.raises(GankitError, match="not a readable archive"):
        fetch("facades", tmp_path, server)
    assert not (tmp_path / "facades").exists()
    assert not (tmp_path / ".partial" / "facades.tar.gz").exists()


def test_connection_refused_names_url_and_offline(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
    try:
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(GankitError) as info:
            download_dataset("facades", tmp_path, base_url=base, progress=False, timeout=5)
    finally:
        sock.close()
    text = str(info.value)
    assert f"{base}{PIX2PIX_PATH}" in text
    assert "offline" in text and "refused" in text
    assert str(tmp_path / ".partial" / "facades.tar.gz") in text  # where a manual download goes
    assert not (tmp_path / "facades").exists()
    assert not (tmp_path / ".partial").exists()  # no empty leftovers


def test_http_404_is_clear(tmp_path: Path, server: Server) -> None:
    del server.files[PIX2PIX_PATH]
    with pytest.raises(GankitError, match="404") as info:
        fetch("facades", tmp_path, server)
    assert f"{server.url}{PIX2PIX_PATH}" in str(info.value)
    assert not (tmp_path / "facades").exists()


def test_disk_full_keeps_partial_for_resume(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    original_open = download._open_part

    class FullDisk:
        def __init__(self, fh):  # type: ignore[no-untyped-def]
            self.fh, self.written = fh, 0

        def write(self, chunk: bytes) -> int:
            if self.written >= 3 * 65536:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(chunk)
            return self.fh.write(chunk)

        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

    monkeypatch.setattr(download, "_open_part", lambda p, m: FullDisk(original_open(p, m)))
    with pytest.raises(GankitError, match="disk is full") as info:
        fetch("facades", tmp_path, server)
    part = tmp_path / ".partial" / "facades.tar.gz.part"
    assert str(part) in str(info.value)
    assert part.read_bytes() == FACADES[: 3 * 65536]
    monkeypatch.setattr(download, "_open_part", original_open)
    out = fetch("facades", tmp_path, server)
    assert server.full_requests(PIX2PIX_PATH)[-1] == f"bytes={3 * 65536}-"
    assert tree(out) == strip_top(FACADES_MEMBERS)


def test_existing_foreign_folder_is_not_clobbered(tmp_path: Path, server: Server) -> None:
    mine = tmp_path / "facades"
    mine.mkdir()
    (mine / "my.jpg").write_bytes(b"mine")
    with pytest.raises(GankitError, match="force"):
        fetch("facades", tmp_path, server)
    assert (mine / "my.jpg").read_bytes() == b"mine"
    assert server.requests == []
