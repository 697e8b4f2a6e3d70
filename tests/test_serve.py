"""``gankit serve``: the HTTP API, its limits and refusals, micro-batching, inference off the
event loop, every backend, and the command itself."""

from __future__ import annotations

import io
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import torch
from export_helpers import png_bytes, random_pixels, save_tiny_checkpoint, tiny
from fastapi.testclient import TestClient
from PIL import Image

import gankit
from gankit.data.image_io import image_to_tensor, to_pil
from gankit.errors import CheckpointError, ConfigError
from gankit.export import export, save_release
from gankit.serve import build_app, load_backend
from gankit.serve.app import create_app
from gankit.serve.backends import Backend
from gankit.serve.limits import Limits


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A tiny eval-mode pix2pix (deterministic outputs) trained at 64 px, as a release."""
    model = tiny("pix2pix", inference_mode="eval")
    model.data_config = gankit.api.DataConfig(crop_size=64, load_size=64)
    return save_release(model, tmp_path_factory.mktemp("release") / "r")


@pytest.fixture(scope="module")
def model(release):
    return gankit.load(release, device="cpu")


@pytest.fixture(scope="module")
def client(release):
    with TestClient(build_app(release)) as c:  # raises on any unhandled server error
        yield c


def decode(content: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(content)) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def expected_output(model, data: bytes) -> np.ndarray:
    """What the model itself makes of the uploaded image, as an 8-bit RGB array."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        tensor = image_to_tensor(im, 3)
    return np.asarray(to_pil(model.translate_tensor(tensor, train_mode=False)), dtype=np.int16)


# --- the API --------------------------------------------------------------------------------
def test_png_and_jpeg_in_multipart_or_raw_give_the_models_output(client, model):
    png = png_bytes(random_pixels(50, 70, seed=1))  # 70 x 50: not a multiple of 32
    r = client.post("/translate", files={"image": ("drawing.png", png, "image/png")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    out = decode(r.content)
    assert out.shape == (50, 70, 3)
    assert np.abs(out - expected_output(model, png)).max() <= 1  # 8-bit rounding at most
    raw = client.post("/translate", content=png, headers={"content-type": "image/png"})
    assert raw.status_code == 200 and raw.content == r.content

    jpeg = png_bytes(random_pixels(40, 33, seed=2), "JPEG", quality=90)
    r = client.post("/translate", content=jpeg, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200
    assert np.abs(decode(r.content) - expected_output(model, jpeg)).max() <= 1
    # A browser may send a file with no specific type: the bytes decide.
    r = client.post("/translate", files={"image": ("x", jpeg, "application/octet-stream")})
    assert r.status_code == 200


def test_gray_and_rgba_uploads_are_converted_to_the_models_channels(client):
    for pixels in (random_pixels(20, 30, channels=1), random_pixels(20, 30, channels=4)):
        r = client.post("/translate", files={"image": ("x.png", png_bytes(pixels), "image/png")})
        assert r.status_code == 200 and decode(r.content).shape == (20, 30, 3)


def test_info_and_health(client):
    info = client.get("/info").json()
    assert info["model"] == "pix2pix" and info["backend"] == "torch"
    assert info["image_size"] == 64 and info["size_multiple"] == 32
    assert info["in_channels"] == 3 and info["value_range"] == [-1.0, 1.0]
    assert info["inference_mode"] == "eval" and info["reverse"] is False
    assert info["limits"]["content_types"] == ["image/png", "image/jpeg"]
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"] == "pix2pix"


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing fetched from elsewhere
    for name in ("page.js", "page.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and "http://" not in r.text and "https://" not in r.text


# --- limits and refusals ----------------------------------------------------------------------
def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's
    header): the server must refuse it from the header, without decoding."""
    data = bytearray(png_bytes(random_pixels(8, 8)))
    ihdr = data[12:29]
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def corrupt_png() -> bytes:
    data = bytearray(png_bytes(random_pixels(40, 40)))
    data[60:200] = os.urandom(140)  # inside the compressed pixel data
    return bytes(data)


REFUSALS = {  # name: (request, status, words of the message)
    "upload too large (raw)": (
        {"content": png_bytes(random_pixels(64, 64)), "headers": {"content-type": "image/png"}},
        413, "larger than the limit"),
    "upload too large (form)": (
        {"files": {"image": ("x.png", png_bytes(random_pixels(64, 64)), "image/png")}},
        413, "larger than the limit"),
    "too many pixels": (
        {"content": png_bytes(np.zeros((200, 200, 3), np.uint8)),
         "headers": {"content-type": "image/png"}}, 413, "200x200 = 40000 pixels"),
    "header claims 100000 x 100000": (
        {"content": png_claiming(100_000, 100_000), "headers": {"content-type": "image/png"}},
        413, "the limit is 10000 pixels"),
    "text content type": (
        {"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, "text/plain"),
    "json content type": (
        {"content": b"{}", "headers": {"content-type": "application/json"}}, 415, "PNG or JPEG"),
    "gif bytes sent as png": (
        {"content": b"GIF89a" + b"\0" * 40, "headers": {"content-type": "image/png"}},
        415, "not a PNG or JPEG"),
    "gif file in a form": (
        {"files": {"image": ("x.gif", b"GIF89a" + b"\0" * 40, "image/gif")}}, 415, "image/gif"),
    "corrupt png": (
        {"content": corrupt_png(), "headers": {"content-type": "image/png"}}, 400, "corrupt"),
    "truncated jpeg": (
        {"content": png_bytes(random_pixels(40, 40), "JPEG")[:300],
         "headers": {"content-type": "image/jpeg"}}, 400, "corrupt or truncated"),
    "empty body": ({"content": b"", "headers": {"content-type": "image/png"}}, 400, "empty"),
    "form without a file": ({"files": {"note": (None, "hi")}}, 400, "no file"),
    "urlencoded form": ({"data": {"image": "x"}}, 415, "x-www-form-urlencoded"),
    "broken multipart": (
        {"content": b"--x\r\nnonsense", "headers": {
            "content-type": "multipart/form-data; boundary=zzz"}}, 400, "form"),
}


@pytest.fixture(scope="module")
def strict_client(release):
    limits = Limits(max_upload_bytes=6000, max_pixels=100 * 100)
    with TestClient(create_app(load_backend(release), limits=limits)) as c:
        yield c


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_requests_get_a_clear_4xx(strict_client, case):
    request, status, words = REFUSALS[case]
    r = strict_client.post("/translate", **request)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    # ... and the server goes on serving.
    ok = strict_client.post("/translate", files={"image": (
        "ok.png", png_bytes(random_pixels(16, 16)), "image/png")})
    assert ok.status_code == 200


# --- concurrency -----------------------------------------------------------------------------
class Gated(Backend):
    """A backend that records its batches and waits at a gate the test opens."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner.contract, inner.source)
        self.inner = inner
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.batches: list[int] = []

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        self.batches.append(images.shape[0])
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        return self.inner.translate(images)


def post(client, data):
    return client.post("/translate", files={"image": ("x.png", data, "image/png")})


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_inference_runs_off_the_event_loop(release):
    gated = Gated(load_backend(release))
    with TestClient(create_app(gated)) as client, ThreadPoolExecutor(2) as pool:
        pending = pool.submit(post, client, png_bytes(random_pixels(32, 32)))
        assert gated.entered.wait(20)
        # The network is busy (blocked at the gate); the server still answers.
        health = pool.submit(client.get, "/health").result(timeout=10)
        assert health.status_code == 200
        gated.gate.set()
        assert pending.result(timeout=20).status_code == 200


def test_concurrent_same_size_requests_share_a_batch(release, client):
    gated = Gated(load_backend(release))
    same = [png_bytes(random_pixels(40, 48, seed=s)) for s in range(5)]
    other = png_bytes(random_pixels(24, 24, seed=9))
    with TestClient(create_app(gated, max_batch=4)) as batching, ThreadPoolExecutor(8) as pool:
        first = pool.submit(post, batching, png_bytes(random_pixels(32, 32)))
        assert gated.entered.wait(20)
        futures = [pool.submit(post, batching, d) for d in [*same, other]]
        wait_for(lambda: batching.app.state.batcher.pending == 6)
        gated.gate.set()
        responses = [f.result(timeout=30) for f in futures]
        assert first.result(timeout=30).status_code == 200
    # One lone request, then the five same-size ones in batches of at most 4, and the
    # other size on its own.
    assert gated.batches[0] == 1 and sorted(gated.batches[1:]) == [1, 1, 4]
    sizes = [int(r.headers["X-Gankit-Batch-Size"]) for r in responses]
    assert sorted(sizes[:5]) == [1, 4, 4, 4, 4] and sizes[5] == 1
    # A batched image gets exactly what it gets alone (eval mode).
    for data, r in zip([*same, other], responses, strict=True):
        assert np.array_equal(decode(r.content), decode(post(client, data).content))


def test_a_full_queue_gets_503(release):
    gated = Gated(load_backend(release))
    with TestClient(create_app(gated, max_queue=2)) as client, ThreadPoolExecutor(4) as pool:
        data = png_bytes(random_pixels(16, 16))
        running = pool.submit(post, client, data)
        assert gated.entered.wait(20)
        queued = [pool.submit(post, client, data) for _ in range(2)]
        wait_for(lambda: client.app.state.batcher.pending == 2)
        refused = post(client, data)
        assert refused.status_code == 503 and "busy" in refused.json()["detail"]
        gated.gate.set()
        assert [f.result(timeout=30).status_code for f in [running, *queued]] == [200] * 3


def test_a_request_that_waits_too_long_gets_503_and_the_worker_goes_on(release):
    gated = Gated(load_backend(release))
    with TestClient(create_app(gated, request_timeout=0.5)) as client:
        data = png_bytes(random_pixels(16, 16))
        r = post(client, data)  # the network never answers in time
        assert r.status_code == 503 and "no result within 0.5 s" in r.json()["detail"]
        gated.gate.set()
        assert post(client, data).status_code == 200


# --- backends ---------------------------------------------------------------------------------
def test_onnx_and_torchscript_backends_agree_with_torch(release, tmp_path, client):
    data = png_bytes(random_pixels(50, 70, seed=3))
    reference = decode(post(client, data).content)
    onnx_path = export(release, "onnx", tmp_path / "m.onnx")
    ts_path = export(release, "torchscript", tmp_path / "m.pt")
    for path, kind in ((onnx_path, "onnxruntime"), (ts_path, "torchscript"),
                       (release, "onnxruntime")):
        backend = "onnxruntime" if path == release else "auto"
        with TestClient(build_app(path, backend=backend)) as c:
            info = c.get("/info").json()
            assert info["backend"] == kind and info["image_size"] == 64
            r = post(c, data)
            assert r.status_code == 200
            assert np.abs(decode(r.content) - reference).max() <= 1, kind


def test_exports_hold_one_direction_and_mode(release, tmp_path):
    onnx_path = export(release, "onnx", tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="exported without --reverse"):
        load_backend(onnx_path, reverse=True)
    with pytest.raises(ConfigError, match="exported in eval mode"):
        load_backend(onnx_path, inference_mode="train")
    with pytest.raises(ConfigError, match="ONNX file"):
        load_backend(onnx_path, backend="torch")


def test_foreign_or_broken_model_files_are_refused_clearly(release, tmp_path):
    import onnx

    proto = onnx.load(str(export(release, "onnx", tmp_path / "m.onnx")))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "foreign.onnx"))
    with pytest.raises(CheckpointError, match="no gankit export metadata"):
        load_backend(tmp_path / "foreign.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        load_backend(tmp_path / "junk.onnx")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_backend(tmp_path / "nothing.pt")


def test_tiny_images_on_a_resnet_generator(tmp_path):
    # 1x1 and 3x5 pictures: padded up to the resnet's smallest size (8), run, cropped back.
    path = save_tiny_checkpoint(tmp_path / "c.pt", tiny("cyclegan"))
    with TestClient(build_app(path, reverse=True)) as client:
        for h, w in ((1, 1), (3, 5), (9, 4)):
            r = post(client, png_bytes(random_pixels(h, w)))
            assert r.status_code == 200 and decode(r.content).shape == (h, w, 3)


# --- the command -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gankit_serve_command(release):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gankit.cli", "serve", str(release),
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # imports on a loaded machine
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        r = httpx.post(f"{base}/translate", files={"image": (
            "x.png", png_bytes(random_pixels(30, 20)), "image/png")}, timeout=30)
        assert r.status_code == 200 and decode(r.content).shape == (30, 20, 3)
        assert "<canvas" in httpx.get(base, timeout=10).text
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in out


def test_demo_ends_with_the_command_that_serves_it(tmp_path, capsys, monkeypatch):
    import gankit.demo
    from gankit.cli import main as cli

    def quick_demo(out, **_options):
        """The demo's run folder and report, without the minutes of training."""
        save_tiny_checkpoint(out / "checkpoints" / "latest.pt", tiny("pix2pix"), crop_size=64)
        return gankit.demo.write_report(out, gankit.load(out, device="cpu"), seed=0)

    monkeypatch.setattr(gankit.demo, "run_demo", quick_demo)
    out = tmp_path / "demo"
    assert cli(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"gankit serve {out}" in printed and "http://127.0.0.1:8000/" in printed
    assert f"gankit serve {out}" in (out / "report.html").read_text()
    # ... and that command's argument, the run folder, is what the server serves.
    with TestClient(build_app(out)) as client:
        assert client.get("/info").json()["image_size"] == 64
        assert post(client, png_bytes(random_pixels(64, 64))).status_code == 200
