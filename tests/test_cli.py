"""The command line, run as a user runs it: real processes, real exit codes and messages."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import TINY_PIX2PIX


def gankit(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "gankit.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def flags(options):
    out = []
    for k, v in options.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            out.append(flag if v else "--no-" + k.replace("_", "-"))
        else:
            out += [flag, str(v)]
    return out


def test_models_and_help():
    r = gankit("models")
    assert r.returncode == 0 and "pix2pix" in r.stdout and "cyclegan" in r.stdout
    r = gankit("train", "pix2pix", "--help")
    assert r.returncode == 0
    for flag in ("--lambda-l1", "--gan-mode", "--crop-size", "--lr-policy", "--resume"):
        assert flag in r.stdout
    assert "(default: 286)" in r.stdout  # pix2pix's own load size, not a generic one
    r = gankit("train", "--help")
    assert r.returncode == 0 and "models:" in r.stdout and "pix2pix_facades" in r.stdout


def test_unknown_model_and_option_fail_with_status_2():
    r = gankit("train", "pix3pix", "--data", "x")
    assert r.returncode == 2 and "unknown model 'pix3pix'" in r.stderr
    r = gankit("train", "pix2pix", "--data", "x", "--lambda-l2", "3")
    assert r.returncode == 2 and "did you mean --lambda-l1" in r.stderr
    r = gankit("nonsense")
    assert r.returncode == 2


def test_missing_and_empty_data_folders(tmp_path):
    r = gankit("train", "pix2pix", "--data", tmp_path / "nope")
    assert r.returncode == 2 and "nope" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "empty").mkdir()
    r = gankit("train", "pix2pix", "--data", tmp_path / "empty")
    assert r.returncode == 2 and "empty" in r.stderr and "Traceback" not in r.stderr


def test_translate_rejects_a_random_file(tmp_path):
    junk = tmp_path / "model.pt"
    junk.write_bytes(os.urandom(500))
    img = tmp_path / "x.png"
    img.write_bytes(b"")
    r = gankit("translate", junk, img, "--out", tmp_path / "out")
    assert r.returncode == 2 and "not a readable gankit checkpoint" in r.stderr


def test_train_interrupt_resume_translate(emoji_small, tmp_path):
    run = tmp_path / "run"
    # Loader workers on, as by default: Ctrl-C reaches them too and must not break the run.
    opts = {**TINY_PIX2PIX, "epochs": 200, "save_latest_every": 0, "progress": False,
            "workers": 2}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gankit.cli", "train", "pix2pix", "--data", str(emoji_small),
         "--run-dir", str(run), *flags(opts)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while time.time() < deadline and not (run / "log.csv").is_file():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume with: gankit train --resume" in err
    assert (run / "checkpoints" / "latest.pt").is_file()

    r = gankit("train", "--resume", run, "--max-steps", "40")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr

    r = gankit("translate", run, emoji_small / "A", "--out", tmp_path / "out",
               "--inference-mode", "eval")
    assert r.returncode == 0, r.stderr
    outputs = sorted((tmp_path / "out" / "outputs").iterdir())
    assert len(outputs) == 12
    assert "outputs/" in (tmp_path / "out" / "index.html").read_text()


@pytest.mark.parametrize("cmd", [["info"], ["translate", "--out", "o", "x.png"]])
def test_checkpoint_commands_need_an_existing_file(tmp_path, cmd):
    r = gankit(*cmd[:1], tmp_path / "missing.pt", *cmd[1:])
    assert r.returncode == 2 and "does not exist" in r.stderr
