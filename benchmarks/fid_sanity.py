"""The FID sanity curve: FID of real images against blurred and noised real images.

A metric that ranks image sets must grow as the images get worse (Heusel et al. 2017 show the
same curves). This script takes 2N real emoji of the twitter set of the shared data, split into
two disjoint sets of N: a reference, and a test set that it degrades step by step with a
Gaussian blur (PIL, radius = sigma in pixels of the 64 px image) and with Gaussian pixel noise
(standard deviation on the [0, 1] scale, clipped). It measures FID and KID of each degraded test
set against the reference with gankit's defaults (clean protocol, the standard Inception). At
level 0 FID is the floor for two different sets of N images from one distribution (FID is
biased upwards for small N) and KID is about 0 (it is unbiased). For scale, the table also gives
the google drawings of the test emoji against the (twitter) reference. It draws
``docs/images/fid_sanity.png`` and prints a markdown table.

    .venv/bin/python benchmarks/fid_sanity.py            # 64 images, ~3 min on 2 CPU cores
    .venv/bin/python benchmarks/fid_sanity.py --n 16     # quick look
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

REPO = Path(__file__).resolve().parents[1]
EMOJI = Path(os.environ.get("GANKIT_SHARED_DATA", REPO.parent / "shared" / "data")) / "emoji"
BLUR = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
NOISE = (0.0, 0.025, 0.05, 0.1, 0.2, 0.3)


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    from gankit.metrics.resize import quantize

    if sigma == 0:
        return images
    out = []
    for u8 in quantize(images):
        pil = Image.fromarray(u8.permute(1, 2, 0).numpy()).filter(ImageFilter.GaussianBlur(sigma))
        out.append(torch.from_numpy(np.array(pil)).permute(2, 0, 1).float() / 127.5 - 1)
    return torch.stack(out)


def noise(images: torch.Tensor, std: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return (images + 2 * std * torch.randn(images.shape, generator=gen)).clamp(-1, 1)


def relabel_x(chart: Image.Image, label: str) -> Image.Image:
    """Replace plot_curves' x-axis caption ("step", centred in the last 16 pixel rows under
    the plot area, which spans x = 70 .. width - 186) with ``label``."""
    from PIL import ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=13)
    except (TypeError, AttributeError, OSError):  # Pillow < 10.1
        font = ImageFont.load_default()
    draw = ImageDraw.Draw(chart)
    w, h = chart.size
    draw.rectangle((70, h - 17, w - 186, h), fill="white")
    draw.text(((70 + w - 186) / 2, h - 9), label, fill=(90, 90, 90), font=font,
              anchor="mm")
    return chart


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=64, help="number of emoji (default 64)")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "fid_sanity.png")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from gankit.data.image_io import read_image
    from gankit.metrics import FeatureExtractor, FeatureStats, fid_from_stats, kid_from_stats
    from gankit.report.plot import plot_curves

    files = sorted((EMOJI / "twitter").glob("*.png"))
    files = files[:: max(1, len(files) // (2 * args.n))][: 2 * args.n]
    reference, test = files[0::2], files[1::2]  # two disjoint sets of N emoji
    real = torch.stack([read_image(f, 3) for f in test])
    other = torch.stack([read_image(EMOJI / "google" / f.name, 3) for f in test])
    ex = FeatureExtractor(device="cpu", batch_size=32)
    base = FeatureStats.from_features(
        ex.from_tensors(torch.stack([read_image(f, 3) for f in reference])), "twitter")

    def measure(images: torch.Tensor) -> tuple[float, float]:
        stats = FeatureStats.from_features(ex.from_tensors(images), "degraded")
        kid = kid_from_stats(base, stats, subsets=100, subset_size=args.n).mean
        return fid_from_stats(base, stats, warn=False), kid

    vendor_fid, vendor_kid = measure(other)
    rows, curves = [], {}
    for kind, levels, fn, unit in (("blur", BLUR, blur, "blur sigma (pixels of 64)"),
                                   ("noise", NOISE, noise, "noise std (on the [0, 1] scale)")):
        points = []
        for level in levels:
            fid, kid = measure(fn(real, level))
            points.append((level, fid))
            rows.append(f"| {kind} | {level:g} | {fid:.1f} | {kid:.4f} |")
            print(rows[-1], flush=True)
        fids = [f for _, f in points]
        print(f"{kind}: monotonic = {fids == sorted(fids)}")
        curves[kind] = (points, unit)

    with tempfile.TemporaryDirectory() as tmp:
        panels = []
        for kind, (points, unit) in curves.items():
            path = Path(tmp) / f"{kind}.png"
            flat = [(x, vendor_fid) for x, _ in points]
            plot_curves({f"{kind}red test set" if kind == "blur" else "noisy test set": points,
                         "google drawings": flat}, path,
                        title=f"FID against {args.n} other emoji, by {kind} level",
                        width=620, height=380)
            panels.append(relabel_x(Image.open(path).convert("RGB"), unit))
        sheet = Image.new("RGB", (sum(im.width for im in panels), panels[0].height), "white")
        x = 0
        for im in panels:
            sheet.paste(im, (x, 0))
            x += im.width
        args.out.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(args.out)
    print("\n| degradation | level | FID | KID |\n|---|---:|---:|---:|\n" + "\n".join(rows))
    print(f"| none, google drawings of the test emoji | | {vendor_fid:.1f} | {vendor_kid:.4f} |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
