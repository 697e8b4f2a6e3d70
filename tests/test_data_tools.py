"""``gankit data combine|resize|edges``: the dataset preparation tools, on images made here,
and one learning test: pix2pix on edges made by the tool from real emoji beats copying."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main
from gankit.data.image_io import array_to_tensor, load_array
from gankit.data.layouts import find_files
from gankit.data.tools import edges as E
from gankit.data.tools.hed import HED, hed_edge_map, load_hed
from gankit.errors import DataError

from conftest import emoji_names


def run(*args, capsys=None):
    code = main([str(a) for a in args])
    return code, (capsys.readouterr() if capsys else None)


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)  # uint16 2-D: 16-bit gray (I;16)
    return path


def noise(h, w, c=3, seed=0):
    shape = (h, w) if c == 1 else (h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def square_photo(size=48, lo=0, hi=255, box=(12, 36)):
    """A bright square on a dark ground: its edges are the square's outline."""
    img = np.full((size, size, 3), lo, np.uint8)
    img[box[0]:box[1], box[0]:box[1]] = hi
    return img


# --- combine --------------------------------------------------------------------------------
def test_combine_pairs_by_name_per_phase_resizes_b_and_reports(tmp_path, capsys):
    a, b = tmp_path / "A", tmp_path / "B"
    left = noise(12, 12, seed=1)
    save(a / "train" / "x.png", left)
    save(b / "train" / "x.jpg", noise(18, 18, c=1, seed=2))  # other size, gray, other extension
    save(a / "train" / "only_a.png", noise(10, 20))
    save(b / "train" / "only_b.png", noise(10, 20))
    save(a / "val" / "y.png", noise(8, 8, seed=3))
    save(b / "val" / "y.png", noise(8, 8, seed=4))
    (a / "train" / "bad.png").write_bytes(b"not a png")
    save(b / "train" / "bad.png", noise(10, 20))
    code, out = run("data", "combine", a, b, "--out", tmp_path / "AB", "--no-progress",
                    capsys=capsys)
    assert code == 0
    combined = np.asarray(Image.open(tmp_path / "AB" / "train" / "x.png"))
    assert combined.shape == (12, 24, 3)  # RGB: the gray B was converted
    assert np.array_equal(combined[:, :12], left)
    assert np.allclose(combined[:, 12:, 0], combined[:, 12:, 1])  # B's gray, repeated
    assert (tmp_path / "AB" / "val" / "y.png").is_file()
    assert not (tmp_path / "AB" / "train" / "only_a.png").exists()
    report = out.out
    for word in ("only_a", "only_b", "resized 1 B image", "x.jpg", str(a / "train" / "bad.png"),
                 "wrote 2 images"):
        assert word in report
    # The result is the aligned layout gankit trains on.
    assert find_files(tmp_path / "AB", phase="train").kind == "aligned"


def test_combine_keeps_sixteen_bits_and_alpha_in_flat_folders(tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    deep = (np.arange(12 * 6, dtype=np.uint16).reshape(6, 12) * 901)
    save(a / "p.png", deep)
    save(b / "p.png", deep[::-1].copy())
    save(a / "q.png", noise(6, 6, c=4))  # RGBA with RGB: RGBA output
    save(b / "q.png", noise(6, 6, c=3))
    assert run("data", "combine", a, b, "--out", tmp_path / "AB", "--no-progress")[0] == 0
    p = load_array(tmp_path / "AB" / "p.png")
    assert p.shape == (6, 24, 1)
    assert np.array_equal(np.rint(p[:, :12, 0] * 65535).astype(np.uint16), deep)
    q = np.asarray(Image.open(tmp_path / "AB" / "q.png"))
    assert q.shape == (6, 12, 4) and (q[:, 6:, 3] == 255).all()


def test_combine_without_any_pair_is_an_error(tmp_path, capsys):
    save(tmp_path / "A" / "x.png", noise(4, 4))
    save(tmp_path / "B" / "y.png", noise(4, 4))
    code, out = run("data", "combine", tmp_path / "A", tmp_path / "B", "--out",
                    tmp_path / "AB", capsys=capsys)
    assert code == 2 and "no image in" in out.err and "Traceback" not in out.err


# --- resize ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["crop", "pad", "stretch"])
def test_resize_modes(tmp_path, mode):
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :10] = (255, 0, 0)  # red left quarter, lost by a centre crop
    save(tmp_path / "in" / "sub" / "wide.png", wide)
    save(tmp_path / "in" / "tall.jpg", noise(40, 20))
    assert run("data", "resize", tmp_path / "in", "--out", tmp_path / "out", "--size", 16,
               "--mode", mode, "--no-progress")[0] == 0
    out = np.asarray(Image.open(tmp_path / "out" / "sub" / "wide.png")).astype(int)
    with Image.open(tmp_path / "out" / "tall.jpg") as tall:
        assert tall.size == (16, 16) and tall.format == "JPEG"
    assert out.shape == (16, 16, 3)
    red = (out[..., 0] > 128) & (out[..., 1] < 64)
    if mode == "crop":
        assert not red.any()  # the centre 20x20 of 40x20 holds no red
    elif mode == "pad":
        assert (out[:4] == 255).all() and (out[-4:] == 255).all()  # white bands
        assert red[4:12, :4].all() and not red[4:12, 5:].any()
    else:
        assert red[:, :3].all() and not red[:, 5:].any()


def test_resize_keeps_sixteen_bits_and_pads_alpha_transparent(tmp_path):
    deep = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 61)
    save(tmp_path / "in" / "deep.png", deep)
    save(tmp_path / "in" / "rgba.png", noise(10, 20, c=4))
    assert run("data", "resize", tmp_path / "in", "--out", tmp_path / "out", "--size", 16,
               "--mode", "pad", "--no-progress")[0] == 0
    with Image.open(tmp_path / "out" / "deep.png") as im:
        assert im.mode.startswith("I") and im.size == (16, 16)
    rgba = np.asarray(Image.open(tmp_path / "out" / "rgba.png"))
    assert rgba.shape == (16, 16, 4) and (rgba[:4, :, 3] == 0).all()


# --- edge post-processing -------------------------------------------------------------------
def test_components_hysteresis_small_pieces_and_thinning():
    mask = torch.zeros(12, 12, dtype=torch.bool)
    mask[1, 1:6] = True  # a 5-pixel line
    mask[3:5, 8] = True  # a 2-pixel piece
    for i in range(6):  # a diagonal: 8-connected, one piece
        mask[6 + i, i] = True
    labels = E.label_components(mask)
    assert len(torch.unique(labels[mask])) == 3 and (labels[~mask] == 0).all()
    assert E.remove_small(mask, 5).sum() == 11  # the 2-pixel piece is gone

    strength = torch.zeros(8, 8)
    strength[2, 1:7] = 0.05  # weak, touching a strong pixel
    strength[2, 3] = 0.2
    strength[6, 1:7] = 0.05  # weak alone
    kept = E.hysteresis(strength, 0.04, 0.1)
    assert kept[2, 1:7].all() and not kept[6].any()

    bar = torch.zeros(20, 30, dtype=torch.bool)
    bar[8:13, 3:27] = True  # 5 pixels thick
    line = E.thin(bar)
    assert (line[:, 6:24].sum(0) == 1).all()  # one pixel thick, away from the ends
    assert len(torch.unique(E.label_components(line)[line])) == 1  # still one piece


def test_canny_finds_the_outline_of_a_square_one_pixel_wide():
    photo = square_photo().astype(np.float32) / 255
    lines = E.clean(E.canny(photo), min_component=5)
    rows, cols = torch.nonzero(lines, as_tuple=True)
    # Every line pixel lies on the square's boundary (between 11 and 12, 35 and 36), +-1.
    near = lambda v: ((v - 11.5).abs() <= 1.5) | ((v - 35.5).abs() <= 1.5)  # noqa: E731
    assert (near(rows.float()) | near(cols.float())).all()
    assert 4 * 20 <= lines.sum() <= 4 * 26  # the perimeter, once
    # No edge at all on a flat photo, nor at the image border.
    assert not E.canny(np.full((32, 32, 3), 0.3, np.float32)).any()


def test_xdog_draws_lines_along_edges_and_leaves_flat_areas_white():
    photo = square_photo(lo=200, hi=60).astype(np.float32) / 255  # a dark square, light ground
    ink = E.xdog(photo)
    stroke = torch.zeros_like(ink)
    stroke[12:36, 12:36] = True
    stroke[15:33, 15:33] = False  # a 3-pixel stroke on the dark side of the edge
    assert ink[stroke].all() and not ink[~stroke].any()
    thinned = E.clean(ink, thin_lines=True)
    assert thinned.sum() < 0.5 * ink.sum() and (thinned & ~stroke).sum() == 0


def test_hed_post_processing_makes_a_thin_line_at_the_ridge():
    """A blurred probability ridge (as HED outputs) becomes a one-pixel line on its crest."""
    rows, cols = torch.meshgrid(torch.arange(40.0), torch.arange(40.0), indexing="ij")
    distance = (rows - 0.5 * cols - 10).abs() / (1 + 0.25) ** 0.5  # the line y = x/2 + 10
    ridge = torch.exp(-0.5 * (distance / 2.0) ** 2) * 0.8
    lines = E.clean(E.hed_lines(ridge), min_component=5)
    assert lines.sum() >= 25
    assert distance[lines].max() <= 1.0  # on the crest
    # one pixel per column along most of the line
    assert (lines[:, 8:32].sum(0) == 1).float().mean() > 0.8


# --- HED weights ----------------------------------------------------------------------------
SNIKLAUS_KEYS = sorted(
    [f"netVgg{s}.{i}.{p}" for s, idx in (("One", (0, 2)), ("Two", (1, 3)), ("Thr", (1, 3, 5)),
                                          ("Fou", (1, 3, 5)), ("Fiv", (1, 3, 5)))
     for i in idx for p in ("weight", "bias")]
    + [f"netScore{s}.{p}" for s in ("One", "Two", "Thr", "Fou", "Fiv")
       for p in ("weight", "bias")]
    + ["netCombine.0.weight", "netCombine.0.bias"])


@pytest.fixture(scope="module")
def hed_file(tmp_path_factory):
    """A randomly initialised HED state dict in the sniklaus/pytorch-hed layout, saved as that
    port's files are (its older ``module`` key prefix, which its loader renames to ``net``)."""
    torch.manual_seed(0)
    state = HED().state_dict()
    assert sorted(state) == SNIKLAUS_KEYS
    path = tmp_path_factory.mktemp("hed") / "network-random.pytorch"
    torch.save({k.replace("net", "module", 1): v for k, v in state.items()}, path)
    return path, state


def test_hed_loads_the_sniklaus_layout_and_runs_on_any_size(hed_file):
    path, state = hed_file
    net = load_hed(path)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())
    photo = np.random.default_rng(0).random((37, 50, 3)).astype(np.float32)
    edge_map = hed_edge_map(net, photo)
    assert edge_map.shape == (37, 50) and 0 <= edge_map.min() and edge_map.max() <= 1
    # The fusion is a 1x1 conv + sigmoid of the five upsampled side outputs.
    x = torch.from_numpy(photo.transpose(2, 0, 1))[None]
    sides = torch.cat(net.side_outputs(x), 1)
    with torch.no_grad():
        fused = torch.sigmoid((sides * net.netCombine[0].weight.view(1, 5, 1, 1)).sum(1)
                              + net.netCombine[0].bias)
        assert torch.allclose(net(x)[0], fused, atol=1e-5)


def test_hed_weights_of_another_layout_are_named(tmp_path):
    path = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(DataError, match=r"vgg\.pth.*38 missing: netCombine\.0\.bias.*"
                                        r"1 unexpected: features\.0\.weight"):
        load_hed(path)


def test_edges_command_with_hed_and_a_split(tmp_path, hed_file, capsys):
    photos = tmp_path / "photos"
    for i in range(5):
        save(photos / f"p{i}.png", square_photo(size=40, box=(8 + i, 30)))
    (photos / "broken.png").write_bytes(b"\x89PNG truncated")
    code, out = run("data", "edges", photos, "--out", tmp_path / "ds", "--method", "hed",
                    "--hed-weights", hed_file[0], "--test-fraction", "0.4", "--no-progress",
                    capsys=capsys)
    assert code == 0
    train = sorted(p.name for p in (tmp_path / "ds" / "train").iterdir())
    test = sorted(p.name for p in (tmp_path / "ds" / "test").iterdir())
    assert len(train) == 3 and len(test) == 2 and not set(train) & set(test)
    pair = np.asarray(Image.open(tmp_path / "ds" / "train" / train[0]))
    assert pair.shape == (40, 80, 3)
    assert set(np.unique(pair[:, :40])) <= {0, 255}  # a binary edge map
    assert np.array_equal(pair[:, 40:], square_photo(size=40, box=(8 + int(train[0][1]), 30)))
    assert str(photos / "broken.png") in out.out and "skipped 1" in out.out
    code, out = run("data", "edges", photos, "--out", tmp_path / "x", "--method", "hed",
                    capsys=capsys)
    assert code == 2 and "--hed-weights" in out.err


def test_edges_split_is_reproducible_and_canny_xdog_differ(tmp_path):
    photos = tmp_path / "photos"
    for i in range(10):
        save(photos / f"p{i}.png", square_photo(box=(6 + i, 40)))
    splits = []
    for method, out in (("canny", "a"), ("canny", "b"), ("xdog", "c")):
        assert run("data", "edges", photos, "--out", tmp_path / out, "--method", method,
                   "--size", 32, "--test-fraction", "0.3", "--no-progress")[0] == 0
        splits.append(sorted(p.name for p in (tmp_path / out / "test").iterdir()))
    assert splits[0] == splits[1] == splits[2] and len(splits[0]) == 3
    a = np.asarray(Image.open(tmp_path / "a" / "train" / "p0.png"))
    c = np.asarray(Image.open(tmp_path / "c" / "train" / "p0.png"))
    assert a.shape == (32, 64, 3) and not np.array_equal(a[:, :32], c[:, :32])


# --- learning -------------------------------------------------------------------------------
QUIET = {"workers": 0, "progress": False, "sample_every": 0, "save_latest_every": 0,
         "save_epoch_every": 0}
EDGES2EMOJI = {**QUIET, "generator": "unet_32", "ngf": 16, "ndf": 16, "lr": 6e-4,
               "preprocess": "none", "crop_size": 32, "load_size": 32, "flip": False,
               "batch_size": 8, "epochs": 4, "epochs_decay": 4, "lr_policy": "linear",
               "log_every": 50}


def halves(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = [], []
    for path in sorted(folder.glob("*.png")):
        arr = load_array(path)
        w = arr.shape[1] // 2
        a.append(array_to_tensor(arr[:, :w, :3]))
        b.append(array_to_tensor(arr[:, w:, :3]))
    return torch.stack(a), torch.stack(b)


@pytest.mark.slow
def test_pix2pix_learns_emoji_from_edges_made_by_the_tool(shared_data, tmp_path):
    """560 real emoji -> `gankit data edges --method canny --size 32` -> pix2pix (about 500
    steps) -> on the held-out 12 %, closer to the photos than the edges themselves are."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in emoji_names(shared_data)[::6][:560]:
        (photos / name).symlink_to(shared_data / "emoji" / "twitter" / name)
    data = tmp_path / "edges2emoji"
    assert main(["data", "edges", str(photos), "--out", str(data), "--method", "canny",
                 "--size", "32", "--test-fraction", "0.12", "--no-progress"]) == 0
    result = gankit.train("pix2pix", data=str(data), run_dir=tmp_path / "run", **EDGES2EMOJI)
    model = gankit.load(result.run_dir)
    edges, photos_b = halves(data / "test")
    assert len(edges) == 67
    identity = (edges - photos_b).abs().mean().item()
    mean_colour = (photos_b.mean((0, 2, 3), keepdim=True) - photos_b).abs().mean().item()
    trained = (model.translate(edges, train_mode=False) - photos_b).abs().mean().item()
    print(f"\nedges2emoji (canny, 32 px, {result.step} steps), held-out L1 on {len(edges)} "
          f"emoji: identity {identity:.4f}, mean colour {mean_colour:.4f}, trained "
          f"{trained:.4f} ({trained / identity:.2f} x identity)")
    assert trained < 0.75 * identity
    assert trained < 0.85 * mean_colour
