"""The drawing page in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

The server runs in a thread of this process with a backend that records what it receives, so
the test can check both sides: the page sent the drawing, and it shows the server's answer.
Skips, with the reason shown, only when no Chromium binary can be found (``make test`` installs
Debian's package where apt is available).

Run as a script to take the documentation's screenshot with a trained model:
``python tests/test_page_e2e.py runs/demo docs/images/drawing_page.png``.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import uvicorn
from PIL import Image

CANDIDATES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium", "/usr/bin/chromium-browser")
SIZE = 128  # the model's training size, so the page's canvas is 128 x 128


def find_chromium() -> str | None:
    explicit = os.environ.get("GANKIT_CHROMIUM")
    for candidate in (explicit, *CANDIDATES, shutil.which("chromium")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


class Recording:
    """Wraps a backend; keeps every image batch it is asked to translate."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.contract = inner.contract
        self.source = inner.source
        self.inputs: list[torch.Tensor] = []
        self.lock = threading.Lock()

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        with self.lock:
            self.inputs.extend(images.clone())
        return self.inner.translate(images)

    def info(self) -> dict:
        return self.inner.info()


@contextmanager
def running_server(backend) -> Iterator[str]:
    from gankit.serve.app import create_app

    config = uvicorn.Config(create_app(backend), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def output_bytes(page) -> bytes:
    """The PNG the page shows as output, fetched from its blob URL inside the page."""
    values = page.evaluate("""async () => {
        const response = await fetch(document.getElementById('output').src);
        return Array.from(new Uint8Array(await response.arrayBuffer()));
    }""")
    return bytes(values)


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def settle(page, recording: Recording, base: int, timeout: float = 30.0) -> None:
    """Wait until the page shows the answer to every request the server received from it
    (the server had received ``base`` requests before the page opened)."""
    deadline = time.monotonic() + timeout
    while True:
        shown = int(page.get_attribute("#output", "data-count") or 0)
        received = len(recording.inputs) - base
        busy = page.inner_text("#status").startswith("translating")
        if shown and shown == received and not busy:
            time.sleep(0.4)  # past the debounce: no request may still be on its way
            if int(page.get_attribute("#output", "data-count")) == len(recording.inputs) - base:
                return
        assert time.monotonic() < deadline, (
            f"page shows {shown} outputs, server got {received}; status: "
            f"{page.inner_text('#status')!r}")
        time.sleep(0.05)


def stroke(page, points: list[tuple[float, float]]) -> None:
    """Drag the mouse through ``points`` given as fractions of the canvas's box."""
    box = page.locator("#canvas").bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("Chromium not found (looked for /usr/bin/chromium and chromium on PATH; "
                    "set GANKIT_CHROMIUM): install Debian's package with apt-get install "
                    "chromium, as make test does where apt is available")
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from export_helpers import tiny

    import gankit
    from gankit.export import save_release
    from gankit.serve.backends import load_backend

    model = tiny("pix2pix", inference_mode="eval")
    model.data_config = gankit.api.DataConfig(crop_size=SIZE, load_size=SIZE)
    release = save_release(model, tmp_path_factory.mktemp("page") / "release")
    recording = Recording(load_backend(release))
    with running_server(recording) as url:
        yield url, recording, gankit.load(release, device="cpu")


def test_draw_and_see_the_output(chromium_path, served, tmp_path):
    from playwright.sync_api import sync_playwright

    url, recording, model = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800},
                                    accept_downloads=True)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            base = len(recording.inputs)
            page.goto(url)
            page.wait_for_selector("#output[data-count='1']", timeout=30_000)
            settle(page, recording, base)
            assert page.evaluate("document.getElementById('canvas').width") == SIZE
            assert "pix2pix" in page.inner_text("#model-info")
            blank_in = recording.inputs[-1]
            assert blank_in.shape == (3, SIZE, SIZE) and blank_in.min() > 0.99  # white paper
            blank_out = pixels(output_bytes(page))

            # Two strokes: a horizontal line at 40% height, then a diagonal.
            stroke(page, [(0.2, 0.4), (0.5, 0.4), (0.8, 0.4)])
            stroke(page, [(0.2, 0.9), (0.9, 0.2)])
            settle(page, recording, base)
            drawn = recording.inputs[-1]
            row = round(0.4 * SIZE)
            line = drawn[:, row - 1 : row + 2, round(0.25 * SIZE) : round(0.75 * SIZE)]
            assert (line.amin(dim=(0, 1)) < -0.5).all(), "the line did not reach the server"
            assert drawn[:, :8, :8].min() > 0.99  # the untouched corner stays white
            assert drawn[:, round(0.55 * SIZE), round(0.55 * SIZE)].max() < 0  # the diagonal

            shown = pixels(output_bytes(page))
            assert shown.shape == (SIZE, SIZE, 3)
            assert np.abs(shown - blank_out).mean() > 1.0, "the output did not change"
            from gankit.data.image_io import to_pil

            expected = np.asarray(to_pil(model.translate_tensor(drawn, train_mode=False)),
                                  dtype=np.int16)
            assert np.abs(shown - expected).max() <= 1  # it shows the server's answer
            page.screenshot(path=str(tmp_path / "drawing_page.png"), full_page=True)
            assert (tmp_path / "drawing_page.png").stat().st_size > 5000

            # Download gives the shown result.
            with page.expect_download() as download:
                page.click("#download")
            assert download.value.suggested_filename == "gankit-output.png"
            assert np.array_equal(pixels(Path(download.value.path()).read_bytes()), shown)

            # Undo twice: back to the blank canvas and its output.
            page.click("#undo")
            page.click("#undo")
            page.click("#translate")
            settle(page, recording, base)
            assert recording.inputs[-1].min() > 0.99
            assert np.abs(pixels(output_bytes(page)) - blank_out).max() <= 1

            # Upload an image: it fills the canvas and is translated at once.
            red = np.zeros((40, 40, 3), np.uint8)
            red[..., 0] = 255
            buffer = io.BytesIO()
            Image.fromarray(red).save(buffer, format="PNG")
            page.set_input_files("#upload", files=[{
                "name": "red.png", "mimeType": "image/png", "buffer": buffer.getvalue()}])
            settle(page, recording, base)
            centre = recording.inputs[-1][:, SIZE // 2, SIZE // 2]
            assert torch.allclose(centre, torch.tensor([1.0, -1.0, -1.0]), atol=0.02)
            assert not errors, errors
        finally:
            browser.close()


def test_phone_sized_viewport_with_touch(chromium_path, served, tmp_path):
    from playwright.sync_api import sync_playwright

    url, recording, _model = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, headless=True)
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844},
                                          device_scale_factor=2, is_mobile=True,
                                          has_touch=True)
            page = context.new_page()
            base = len(recording.inputs)
            page.goto(url)
            page.wait_for_selector("#output[data-count='1']", timeout=30_000)
            settle(page, recording, base)
            # Everything fits the width: no sideways scrolling, canvas and output full width.
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            canvas = page.locator("#canvas").bounding_box()
            output = page.locator("#output").bounding_box()
            assert canvas["width"] > 300 and output["width"] > 300
            assert output["y"] > canvas["y"] + canvas["height"]  # stacked, not side by side
            before = len(recording.inputs)
            page.touchscreen.tap(canvas["x"] + canvas["width"] / 2,
                                 canvas["y"] + canvas["height"] / 2)
            settle(page, recording, base)
            assert len(recording.inputs) > before
            # The tap drew a dot where the finger was, and nowhere else.
            dark = (recording.inputs[-1].amin(dim=0) < 0).nonzero()
            assert len(dark) > 0
            assert ((dark.float() - (SIZE / 2 - 0.5)).abs() <= 3).all(), dark.tolist()
            page.screenshot(path=str(tmp_path / "drawing_page_phone.png"), full_page=True)
        finally:
            browser.close()


def take_screenshot(model_path: str, out: str) -> None:
    """Serve ``model_path``, draw a few shapes' edges and save a screenshot to ``out``."""
    from playwright.sync_api import sync_playwright

    from gankit.serve.backends import load_backend

    recording = Recording(load_backend(model_path, device="cpu"))
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("Chromium not found: apt-get install chromium")
    with running_server(recording) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page(viewport={"width": 1000, "height": 640})
        base = 0
        page.goto(url)
        page.wait_for_selector("#output[data-count='1']", timeout=30_000)
        stroke(page, [(0.12, 0.12), (0.38, 0.12), (0.38, 0.38), (0.12, 0.38), (0.12, 0.12)])
        stroke(page, [(0.62, 0.15), (0.88, 0.3), (0.62, 0.45), (0.62, 0.15)])
        circle = [(0.35 + 0.17 * np.cos(a), 0.72 + 0.17 * np.sin(a))
                  for a in np.linspace(0, 2 * np.pi, 40)]
        stroke(page, circle)
        settle(page, recording, base)
        page.screenshot(path=out, full_page=True)
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python tests/test_page_e2e.py MODEL OUT.png")
    take_screenshot(sys.argv[1], sys.argv[2])
