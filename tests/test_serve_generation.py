"""``gankit serve`` on a generative model: ``POST /sample`` (grid, zip, json), its parameters,
limits and refusals, ``GET /info``, micro-batching, every backend, and the command itself."""

from __future__ import annotations

import base64
import io
import json
import math
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from export_helpers import save_generator_checkpoint, tiny_generator
from fastapi.testclient import TestClient
from PIL import Image

import gankit
from gankit.data.image_io import to_pil
from gankit.errors import ConfigError
from gankit.export import export, save_release
from gankit.report.grid import make_grid
from gankit.serve import build_app, load_backend
from gankit.serve.app import create_app
from gankit.serve.limits import Limits
from gankit.serve.sampling import GeneratorBackend

NAMES = ["cat", "dog", "bird"]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A tiny conditional model (3 named classes, dropout that eval mode turns off), as a
    release."""
    return save_release(tiny_generator("cgan-mlp", class_names=NAMES),
                        tmp_path_factory.mktemp("release") / "cgan")


@pytest.fixture(scope="module")
def model(release):
    return gankit.load(release, device="cpu")


@pytest.fixture(scope="module")
def client(release):
    with TestClient(build_app(release)) as c:  # raises on any unhandled server error
        yield c


@pytest.fixture(scope="module")
def dcgan_checkpoint(tmp_path_factory):
    return save_generator_checkpoint(tmp_path_factory.mktemp("dcgan") / "latest.pt",
                                     tiny_generator("dcgan"))


def pixels(content: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(content)) as im:
        assert im.format == "PNG"
        return np.asarray(im, dtype=np.int16)


def as_8bit(image: torch.Tensor) -> np.ndarray:
    return np.asarray(to_pil(image), dtype=np.int16)


def json_images(response) -> list[np.ndarray]:
    return [pixels(base64.b64decode(b)) for b in response.json()["images"]]


# --- the API --------------------------------------------------------------------------------
def test_grid_is_what_the_model_samples(client, model):
    r = client.post("/sample?n=6&label=dog&seed=3")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["X-Gankit-Seed"] == "3" and r.headers["X-Gankit-Labels"] == "1,1,1,1,1,1"
    want = make_grid(model.sample(6, [1] * 6, seed=3), nrow=3)  # square by default
    assert np.array_equal(pixels(r.content), as_8bit(want))
    # The label as a number is the same class, and the seed makes it repeatable.
    again = client.post("/sample?n=6&label=1&seed=3")
    assert again.content == r.content
    other = client.post("/sample?n=6&label=1&seed=4")
    assert other.content != r.content


def test_json_and_zip_give_the_separate_images(client, model):
    r = client.post("/sample", json={"n": 4, "label": ["cat", 2], "seed": 1, "format": "json"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["seed"] == 1 and body["labels"] == [0, 2, 0, 2]  # used in turn
    assert body["label_names"] == ["cat", "bird", "cat", "bird"]
    want = model.sample(4, [0, 2, 0, 2], seed=1)
    got = json_images(r)
    assert all(np.array_equal(g, as_8bit(w)) for g, w in zip(got, want, strict=True))

    z = client.post("/sample?n=4&label=cat&label=2&seed=1&format=zip")
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(z.content)) as archive:
        names = archive.namelist()
        assert names == [f"sample_{i:05d}.png" for i in range(4)] + ["samples.json"]
        assert json.loads(archive.read("samples.json"))["labels"] == [0, 2, 0, 2]
        assert all(np.array_equal(pixels(archive.read(n)), g)
                   for n, g in zip(names, got, strict=False))


def test_defaults_every_class_in_turn_and_a_seed_to_repeat(client, model):
    r = client.post("/sample", params={"n": 7})
    assert r.status_code == 200 and r.headers["X-Gankit-Labels"] == "0,1,2,0,1,2,0"
    seed = int(r.headers["X-Gankit-Seed"])
    # One class per column, as gankit sample lays out a conditional model's grid.
    want = make_grid(model.sample(7, seed=seed), nrow=3)
    assert np.array_equal(pixels(r.content), as_8bit(want))
    assert client.post(f"/sample?n=7&seed={seed}").content == r.content
    default = client.post("/sample", params={"format": "json"}).json()
    assert default["n"] == 16


def test_a_form_body_works_and_a_parameter_twice_is_refused(client):
    form = client.post("/sample", data={"n": "2", "seed": "5", "format": "json"})
    query = client.post("/sample?n=2&seed=5&format=json")
    assert form.status_code == 200 and form.json() == query.json()
    r = client.post("/sample?n=2", json={"n": 3})
    assert r.status_code == 400 and "both in the query string and in the body" in r.json()[
        "detail"]


def test_info_describes_the_generator(client):
    info = client.get("/info").json()
    assert info["model"] == "cgan" and info["backend"] == "torch"
    assert info["task"] == "generation" and info["conditional"] is True
    assert info["num_classes"] == 3 and info["class_names"] == NAMES
    assert info["latent_dim"] == 10 and info["image_size"] == 16
    assert info["image_shape"] == [1, 16, 16] and info["value_range"] == [-1.0, 1.0]
    assert info["prior"]["distribution"] == "normal"
    assert info["limits"]["max_samples"] == 64 and "POST /sample" in info["endpoints"]
    health = client.get("/health").json()
    assert health == {"status": "ok", "model": "cgan", "pending": 0}


def test_the_root_page_samples_and_translate_is_refused(client):
    page = client.get("/")
    assert page.status_code == 200 and "/sample" in page.text and "/info" in page.text
    assert "http" not in page.text  # nothing fetched from elsewhere
    r = client.post("/translate", content=b"x", headers={"content-type": "image/png"})
    assert r.status_code == 404 and "POST /sample" in r.json()["detail"]


# --- limits and refusals ----------------------------------------------------------------------
REFUSALS = {  # name: (request, status, words of the message)
    "n is 0": ({"params": {"n": 0}}, 400, "n must be at least 1"),
    "n is text": ({"params": {"n": "many"}}, 400, "n must be a whole number"),
    "n is a fraction": ({"json": {"n": 2.5}}, 400, "n must be a whole number"),
    "n is true": ({"json": {"n": True}}, 400, "n must be a whole number"),
    "n over the limit": ({"params": {"n": 9}}, 413, "limit of 8 per request"),
    "too many pixels": ({"params": {"n": 5}}, 413, "5 images of 16x16 are 1280 pixels"),
    "unknown class name": ({"params": {"label": "fish"}}, 400,
                           "unknown class 'fish'; this model knows 3 classes: 0..2 (cat, dog, "
                           "bird)"),
    "class number too large": ({"params": {"label": 3}}, 400, "label 3 is not a trained class"),
    "negative class": ({"json": {"label": -1}}, 400, "label -1 is not a trained class"),
    "label is an object": ({"json": {"label": {"a": 1}}}, 400, "class number or name"),
    "more labels than images": ({"params": {"n": 2, "label": [0, 1, 2]}}, 400,
                                "3 labels given for n = 2"),
    "negative seed": ({"params": {"seed": -1}}, 400, "seed must be from 0 to"),
    "seed is text": ({"params": {"seed": "abc"}}, 400, "seed must be a whole number"),
    "unknown format": ({"params": {"format": "gif"}}, 400, "format must be one of grid, zip"),
    "unknown parameter": ({"params": {"count": 3}}, 400, "unknown parameter 'count'"),
    "n twice": ({"params": [("n", 1), ("n", 2)]}, 400, "'n' is given 2 times"),
    "nrow is 0": ({"params": {"nrow": 0}}, 400, "nrow must be at least 1"),
    "broken json": ({"content": b"{n: 3", "headers": {"content-type": "application/json"}},
                    400, "not valid JSON"),
    "json list": ({"json": [1, 2]}, 400, "must be an object"),
    "an image body": ({"content": b"\x89PNG....", "headers": {"content-type": "image/png"}},
                      415, "not accepted for /sample"),
    "a large body": ({"json": {"label": ["cat"] * 4000}}, 413, "larger than 16384 bytes"),
}


@pytest.fixture(scope="module")
def strict_client(release):
    limits = Limits(max_pixels=4 * 16 * 16, max_samples=8)
    with TestClient(create_app(load_backend(release), limits=limits)) as c:
        yield c


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_requests_get_a_clear_4xx(strict_client, case):
    request, status, words = REFUSALS[case]
    r = strict_client.post("/sample", **request)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    ok = strict_client.post("/sample", params={"n": 4, "label": "bird"})  # and it goes on
    assert ok.status_code == 200


def test_an_unconditional_model(dcgan_checkpoint):
    model = gankit.load(dcgan_checkpoint, device="cpu")
    with TestClient(build_app(dcgan_checkpoint)) as client:
        info = client.get("/info").json()
        assert info["model"] == "dcgan" and info["conditional"] is False
        assert info["class_names"] == [] and info["latent_dim"] == 12
        r = client.post("/sample?n=5&seed=2")
        assert r.status_code == 200 and r.headers["X-Gankit-Labels"] == ""
        want = make_grid(model.sample(5, seed=2), nrow=math.ceil(math.sqrt(5)))
        assert np.array_equal(pixels(r.content), as_8bit(want))
        refused = client.post("/sample?label=3")
        assert refused.status_code == 400 and "not conditioned on a class" in refused.json()[
            "detail"]


def test_translation_options_are_refused(release, tmp_path):
    onnx_path = export(release, "onnx", tmp_path / "g.onnx")
    for path in (release, onnx_path):
        with pytest.raises(ConfigError, match="leave --reverse out"):
            load_backend(path, reverse=True)
        with pytest.raises(ConfigError, match="samples in eval mode"):
            load_backend(path, inference_mode="train")
        assert isinstance(load_backend(path, inference_mode="eval"), GeneratorBackend)


# --- backends ---------------------------------------------------------------------------------
def test_onnx_and_torchscript_backends_give_the_same_images(release, client, tmp_path):
    request = {"n": 5, "label": ["dog", "bird"], "seed": 11, "format": "json"}
    reference = json_images(client.post("/sample", json=request))
    onnx_path = export(release, "onnx", tmp_path / "g.onnx")
    ts_path = export(release, "torchscript", tmp_path / "g.pt")
    for path, backend, kind in ((onnx_path, "auto", "onnxruntime"),
                                (ts_path, "auto", "torchscript"),
                                (release, "onnxruntime", "onnxruntime")):
        with TestClient(build_app(path, backend=backend)) as c:
            info = c.get("/info").json()
            assert info["backend"] == kind and info["class_names"] == NAMES
            got = json_images(c.post("/sample", json=request))
            for g, w in zip(got, reference, strict=True):
                assert np.abs(g - w).max() <= 1, kind  # 8-bit rounding at most


def test_an_onnx_file_draws_the_models_prior(tmp_path):
    """AAE's mixture prior: the ONNX backend draws it from the file's metadata alone."""
    model = tiny_generator("aae-mixture")
    ckpt = save_generator_checkpoint(tmp_path / "aae.pt", model)
    onnx_path = export(ckpt, "onnx", tmp_path / "aae.onnx")
    answers = []
    for path in (ckpt, onnx_path):
        with TestClient(build_app(path)) as c:
            assert c.get("/info").json()["prior"]["distribution"] == "mixture"
            answers.append(json_images(c.post("/sample?n=6&seed=4&format=json")))
    want = model.sample(6, seed=4)
    for torch_image, onnx_image, w in zip(*answers, want, strict=True):
        assert np.array_equal(torch_image, as_8bit(w))
        assert np.abs(onnx_image - torch_image).max() <= 1


# --- concurrency -----------------------------------------------------------------------------
class Gated(GeneratorBackend):
    """A generator backend that records its batches and waits at a gate the test opens."""

    def __init__(self, inner: GeneratorBackend) -> None:
        super().__init__(inner.contract, inner.source)
        self.inner = inner
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.batches: list[tuple[int, int]] = []

    def noise(self, n, seed):
        return self.inner.noise(n, seed)

    def run_packed(self, packed):
        self.batches.append(tuple(packed.shape[:2]))
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        return self.inner.run_packed(packed)


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_concurrent_requests_share_a_forward_pass(release, client):
    gated = Gated(load_backend(release))
    with TestClient(create_app(gated, max_batch=4)) as batching, ThreadPoolExecutor(8) as pool:
        def sample(query):
            return batching.post(f"/sample?format=json&{query}")

        first = pool.submit(sample, "n=2&seed=0")
        assert gated.entered.wait(20)
        same = [f"n=3&seed={s}&label={s % 3}" for s in range(5)]
        futures = [pool.submit(sample, q) for q in [*same, "n=1&seed=9"]]
        wait_for(lambda: batching.app.state.batcher.pending == 6)
        gated.gate.set()
        responses = [f.result(timeout=30) for f in futures]
        assert first.result(timeout=30).status_code == 200
    # A lone request, then the five with n = 3 in batches of at most 4 requests, and n = 1 on
    # its own.
    assert gated.batches[0] == (1, 2)
    assert sorted(gated.batches[1:]) == [(1, 1), (1, 3), (4, 3)]
    sizes = [int(r.headers["X-Gankit-Batch-Size"]) for r in responses]
    assert sorted(sizes[:5]) == [1, 4, 4, 4, 4] and sizes[5] == 1
    # A batched request gets exactly what it gets alone (eval mode).
    for query, r in zip([*same, "n=1&seed=9"], responses, strict=True):
        alone = client.post(f"/sample?format=json&{query}")
        assert r.json() == alone.json()


def test_a_full_queue_gets_503(release):
    gated = Gated(load_backend(release))
    with TestClient(create_app(gated, max_queue=2)) as client, ThreadPoolExecutor(4) as pool:
        running = pool.submit(client.post, "/sample?n=2")
        assert gated.entered.wait(20)
        queued = [pool.submit(client.post, "/sample?n=2") for _ in range(2)]
        wait_for(lambda: client.app.state.batcher.pending == 2)
        refused = client.post("/sample?n=2")
        assert refused.status_code == 503 and "busy" in refused.json()["detail"]
        gated.gate.set()
        assert [f.result(timeout=30).status_code for f in [running, *queued]] == [200] * 3


# --- the command -----------------------------------------------------------------------------
def test_gankit_serve_command_on_a_generative_checkpoint(dcgan_checkpoint, monkeypatch, capsys):
    import gankit.serve
    from gankit.cli import main as cli

    served = {}
    monkeypatch.setattr(gankit.serve, "serve", lambda app, host, port: served.update(app=app))
    assert cli(["serve", str(dcgan_checkpoint), "--max-samples", "4", "--port", "8123"]) == 0
    assert "http://127.0.0.1:8123/ to sample" in capsys.readouterr().out
    with TestClient(served["app"]) as client:
        assert client.post("/sample?n=4").status_code == 200
        assert client.post("/sample?n=5").status_code == 413
    assert cli(["serve", str(dcgan_checkpoint), "--reverse"]) == 2
    assert "leave --reverse out" in capsys.readouterr().err
