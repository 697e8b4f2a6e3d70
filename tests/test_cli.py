"""The command line as a user runs it: exit codes and messages through ``gankit.cli.main``
(what ``python -m gankit.cli`` calls), and real processes where the process itself is the
point: the entry point, and Ctrl-C reaching a training run and its loader workers."""

import logging
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from gankit.cli import main

from conftest import TINY_PIX2PIX


def gankit(*args, timeout=120):
    """A real ``python -m gankit.cli`` process (a few seconds of imports each)."""
    return subprocess.run([sys.executable, "-m", "gankit.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli(capsys):
    """``gankit ARGS`` in this process: the exit status and what it printed, as a process would
    report them (argparse's SystemExit included)."""

    def run(*args):
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    return run


def flags(options):
    out = []
    for k, v in options.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            out.append(flag if v else "--no-" + k.replace("_", "-"))
        else:
            out += [flag, str(v)]
    return out


def test_the_entry_point_runs_as_a_process():
    r = gankit("models")
    assert r.returncode == 0 and "pix2pix" in r.stdout and "cyclegan" in r.stdout
    r = gankit("nonsense")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_models_and_help(cli):
    r = cli("models")
    assert r.returncode == 0 and "pix2pix" in r.stdout and "cyclegan" in r.stdout
    r = cli("train", "pix2pix", "--help")
    assert r.returncode == 0
    for flag in ("--lambda-l1", "--gan-mode", "--crop-size", "--lr-policy", "--resume"):
        assert flag in r.stdout
    assert "(default: 286)" in r.stdout  # pix2pix's own load size, not a generic one
    r = cli("train", "--help")
    assert r.returncode == 0 and "models:" in r.stdout and "pix2pix_facades" in r.stdout


def test_unknown_model_and_option_fail_with_status_2(cli):
    r = cli("train", "pix3pix", "--data", "x")
    assert r.returncode == 2 and "unknown model 'pix3pix'" in r.stderr
    r = cli("train", "pix2pix", "--data", "x", "--lambda-l2", "3")
    assert r.returncode == 2 and "did you mean --lambda-l1" in r.stderr
    r = cli("nonsense")
    assert r.returncode == 2


def test_missing_and_empty_data_folders(cli, tmp_path):
    r = cli("train", "pix2pix", "--data", tmp_path / "nope")
    assert r.returncode == 2 and "nope" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "empty").mkdir()
    r = cli("train", "pix2pix", "--data", tmp_path / "empty")
    assert r.returncode == 2 and "empty" in r.stderr and "Traceback" not in r.stderr


def test_translate_rejects_a_random_file(cli, tmp_path):
    junk = tmp_path / "model.pt"
    junk.write_bytes(os.urandom(500))
    img = tmp_path / "x.png"
    img.write_bytes(b"")
    r = cli("translate", junk, img, "--out", tmp_path / "out")
    assert r.returncode == 2 and "not a readable gankit checkpoint" in r.stderr


def test_train_interrupt_resume_translate(emoji_small, tmp_path, cli, caplog):
    run = tmp_path / "run"
    # A real process, with loader workers on (the default on machines with more than 2 cores):
    # Ctrl-C reaches them too and must not break the run.
    opts = {**TINY_PIX2PIX, "epochs": 200, "save_latest_every": 0, "progress": False,
            "workers": 2}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gankit.cli", "train", "pix2pix", "--data", str(emoji_small),
         "--run-dir", str(run), *flags(opts)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300  # generous for a loaded machine: the loop ends at the log
    while time.time() < deadline and not (run / "log.csv").is_file():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume with: gankit train --resume" in err
    assert (run / "checkpoints" / "latest.pt").is_file()

    caplog.set_level(logging.INFO, logger="gankit")
    r = cli("train", "--resume", run, "--max-steps", "40")
    assert r.returncode == 0, r.stderr
    assert "resuming" in caplog.text

    r = cli("translate", run, emoji_small / "A", "--out", tmp_path / "out",
            "--inference-mode", "eval")
    assert r.returncode == 0, r.stderr
    outputs = sorted((tmp_path / "out" / "outputs").iterdir())
    assert len(outputs) == 12
    assert "outputs/" in (tmp_path / "out" / "index.html").read_text()


@pytest.mark.parametrize("cmd", [["info"], ["translate", "--out", "o", "x.png"]])
def test_checkpoint_commands_need_an_existing_file(cli, tmp_path, cmd):
    r = cli(*cmd[:1], tmp_path / "missing.pt", *cmd[1:])
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_device_is_not_taken_for_devices():
    from gankit.cli import _train_preparser

    pre, _ = _train_preparser().parse_known_args(["pix2pix", "--device", "cpu"])
    assert pre.devices is None
    pre, _ = _train_preparser().parse_known_args(["pix2pix", "--devices", "2"])
    assert pre.devices == 2
