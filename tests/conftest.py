"""Shared fixtures: the real data set folder and small deterministic settings."""

from __future__ import annotations

import os
from pathlib import Path


def _machine_is_busy() -> bool:
    """Other processes hold the cores the tests' two threads need: the 1-minute load average,
    read before this session computes anything, is over one core's worth above what leaves two
    cores free (the tail of a test run that just ended, 1-1.5 on 2 cores, does not count)."""
    return os.getloadavg()[0] > max((os.cpu_count() or 1) - 2, 0) + 1.5


# torch threads for every test: two, or one where other processes already keep the machine
# busy when the session starts. Two threads whose cores other work holds wait for each other at
# every operation: with one other busy process on 2 cores a training step took 1.2-2.3x as long
# as with one thread, and with several other torch jobs 5-15x (benchmarks/cpu_threads.py and
# its section of docs/benchmarks.md); passive OpenMP waiting helped some models and slowed
# others. GANKIT_TEST_THREADS sets the number by hand.
TEST_THREADS = int(os.environ.get("GANKIT_TEST_THREADS", "1" if _machine_is_busy() else "2"))

import pytest  # noqa: E402
import torch  # noqa: E402

# Now as well as before each test: module- and session-scoped fixtures (a reference run that
# several tests compare against) are set up before any function-scoped fixture runs.
torch.set_num_threads(TEST_THREADS)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GANKIT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (override with GANKIT_SHARED_DATA): MNIST, emoji, facades."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real test data not found at {SHARED_DATA}; set GANKIT_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(TEST_THREADS)
    yield


def link_emoji_pairs(shared: Path, dest: Path, names: list[str]) -> Path:
    """A paired folder (A = twitter, B = google) made of links to the real emoji files."""
    for side, vendor in (("A", "twitter"), ("B", "google")):
        (dest / side).mkdir(parents=True, exist_ok=True)
        for name in names:
            (dest / side / name).symlink_to(shared / "emoji" / vendor / name)
    return dest


def emoji_names(shared: Path) -> list[str]:
    return sorted(p.name for p in (shared / "emoji" / "twitter").glob("*.png"))


@pytest.fixture(scope="session")
def emoji_small(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve real emoji pairs, twitter -> google, as a paired A/ B/ folder."""
    names = emoji_names(shared_data)[100:1300:100]
    return link_emoji_pairs(shared_data, tmp_path_factory.mktemp("emoji_small"), names)


TINY_PIX2PIX = {
    "generator": "unet_32", "ngf": 8, "ndf": 8, "load_size": 32, "crop_size": 32,
    "preprocess": "resize_and_crop", "batch_size": 2, "epochs": 2, "epochs_decay": 1,
    "workers": 0, "progress": False, "log_every": 1, "sample_every": 0,
    "save_latest_every": 0, "save_epoch_every": 0, "in_channels": 3, "out_channels": 3,
}


@pytest.fixture(scope="session")
def mnist_judge(shared_data: Path):
    """A digit classifier trained once per session on MNIST test images 5000..9999 (see
    tests/mnist_judge.py); generative models in tests train on images 0..4999."""
    from mnist_judge import MnistJudge

    torch.set_num_threads(TEST_THREADS)
    judge = MnistJudge(shared_data)
    assert judge.accuracy > 0.95, f"the judge itself is weak ({judge.accuracy:.3f})"
    return judge


# Settings for quick generative runs on the first 5000 real MNIST test digits.
TINY_MNIST = {
    "phase": "test", "max_items": 5000, "workers": 0, "progress": False, "log_every": 10,
    "sample_every": 0, "save_latest_every": 0, "save_epoch_every": 0,
}
