"""The main job: gankit demo trains, translates held-out shapes and writes its report."""

import re

from gankit.demo import run_demo
from gankit.train.checkpoint import load_checkpoint


def test_demo_writes_a_report_and_continues_when_run_again(tmp_path):
    out = tmp_path / "demo"
    report = run_demo(out, steps=40, device="cpu")
    page = report.read_text()
    for name in ("held_out.png", "loss_curves.png"):
        assert (out / name).is_file() and name in page
    model_l1, identity_l1 = map(float, re.findall(r"<td>(\d\.\d{4})</td>", page))
    assert 0 < model_l1 < identity_l1  # even 40 steps beat copying the edges
    assert "gankit translate" in page

    run_demo(out, steps=44, device="cpu")  # a second run resumes the first
    assert load_checkpoint(out / "checkpoints" / "latest.pt")["step"] == 44
