"""``gankit evaluate``: FID/KID between two folders, or a trained model on a dataset.

  gankit evaluate REAL_DIR FAKE_DIR [--kid]
  gankit evaluate CHECKPOINT --data DATASET [--kid]

With a checkpoint, a translation model translates the held-out phase of the dataset (test,
else val) and is measured against the targets (L1, PSNR, SSIM when they exist; FID/KID
always); a generation model draws samples, measured against the dataset's images. The real
side's statistics are cached (see docs/metrics.md), so evaluating many checkpoints against one
dataset costs one pass over it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

from gankit.errors import ConfigError

log = logging.getLogger("gankit")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="FID/KID of two image folders, or of a trained model on a dataset",
        description="gankit evaluate REAL_DIR FAKE_DIR measures FID (and KID) of the images in "
        "FAKE_DIR against REAL_DIR. gankit evaluate CHECKPOINT --data DATASET translates the "
        "held-out phase of DATASET (test, else val) or samples a generative model, and "
        "measures the result: L1, PSNR and SSIM against the targets when the data is paired, "
        "and FID/KID. FID uses the TF 2015-12-05 Inception-v3 (pip install "
        "'gankit[metrics]') with the clean-fid resize protocol unless --protocol legacy.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  gankit evaluate datasets/facades/test/B results/fakes --kid\n"
        "  gankit evaluate runs/pix2pix-facades --data datasets/facades --json eval.json\n"
        "  gankit evaluate runs/dcgan-mnist --data datasets/mnist --num-samples 10000")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="REAL_DIR FAKE_DIR, or one CHECKPOINT (file or run folder) with --data")
    p.add_argument("--data", help="dataset to evaluate a checkpoint on")
    p.add_argument("--phase", help="dataset phase (default: test, else val; generation "
                   "models: the training phase)")
    p.add_argument("--max-images", type=_positive_int, default=None,
                   help="use at most this many dataset images (default: all)")
    p.add_argument("--num-samples", type=_positive_int, default=None,
                   help="generation models: images to sample (default: as many as real ones)")
    p.add_argument("--kid", action="store_true", help="also compute KID (mean and std)")
    p.add_argument("--kid-subsets", type=_positive_int, default=100)
    p.add_argument("--kid-subset-size", type=_positive_int, default=1000)
    p.add_argument("--no-fid", action="store_true",
                   help="translation with targets: paired metrics only (no Inception)")
    p.add_argument("--protocol", choices=("clean", "legacy"), default="clean",
                   help="resize protocol: clean (clean-fid, default) or legacy (bilinear)")
    p.add_argument("--inception-weights", metavar="PATH", default=None,
                   help="the FID Inception-v3 TorchScript file (default: found automatically)")
    p.add_argument("--no-download", action="store_true",
                   help="never download the Inception weights")
    p.add_argument("--no-cache", action="store_true",
                   help="neither read nor write cached reference statistics")
    p.add_argument("--skip-bad-files", action="store_true",
                   help="leave out unreadable images with a warning instead of stopping")
    p.add_argument("--batch-size", type=_positive_int, default=50)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--seed", type=int, default=0, help="seed of KID subsets and of samples")
    p.add_argument("--json", metavar="FILE", help="also write the results to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if len(args.paths) == 2:
        if args.data:
            raise ConfigError("give either REAL_DIR FAKE_DIR, or CHECKPOINT --data DATASET")
        result = evaluate_folders(args)
    elif len(args.paths) == 1:
        if not args.data:
            raise ConfigError(f"evaluating the checkpoint {args.paths[0]} needs --data DATASET "
                              "(or give two folders: REAL_DIR FAKE_DIR)")
        result = evaluate_checkpoint(args)
    else:
        raise ConfigError("give two folders (REAL_DIR FAKE_DIR) or one checkpoint with --data")
    print(format_table(result))
    if args.json:
        from gankit.atomic import write_bytes_atomic

        write_bytes_atomic(Path(args.json), (json.dumps(result, indent=2) + "\n").encode())
        print(f"wrote {args.json}")
    return 0


def _extractor(args: argparse.Namespace, device: Any = None) -> Any:
    from gankit.metrics.features import FeatureExtractor

    return FeatureExtractor(args.inception_weights, protocol=args.protocol,
                            device=device if device is not None else args.device,
                            batch_size=args.batch_size, download=not args.no_download)


def _feature_info(ex: Any) -> dict[str, Any]:
    from gankit.metrics.resize import describe_protocol

    return {"protocol": ex.protocol, "protocol_description": describe_protocol(ex.protocol),
            "weights": {"path": str(ex.weights.path), "sha256": ex.weights.sha256,
                        "standard": ex.weights.standard, "found_via": ex.weights.source}}


def evaluate_folders(args: argparse.Namespace) -> dict[str, Any]:
    from gankit.metrics.compare import compare

    real, fake = (Path(p) for p in args.paths)
    ex = _extractor(args)
    comparison = compare(real, fake, kid=args.kid, kid_subsets=args.kid_subsets,
                         kid_subset_size=args.kid_subset_size, seed=args.seed,
                         cache_real=not args.no_cache, extractor=ex,
                         skip_bad=args.skip_bad_files, progress=True)
    metrics: dict[str, float] = {"fid": comparison.fid}
    if comparison.kid is not None:
        metrics.update(kid_mean=comparison.kid.mean, kid_std=comparison.kid.std)
    return {"mode": "folders", "real": str(real), "fake": str(fake),
            "n_real": comparison.n_real, "n_fake": comparison.n_fake, "metrics": metrics,
            "kid_subsets": args.kid_subsets if args.kid else None,
            **_feature_info(ex)}


def evaluate_checkpoint(args: argparse.Namespace) -> dict[str, Any]:
    from gankit import api
    from gankit import evaluation as ev
    from gankit.data.config import DataConfig

    checkpoint = args.paths[0]
    model = api.load(checkpoint, device=args.device)
    data = dataclasses.replace(model.data_config or DataConfig(), data=args.data,
                               max_items=None, workers=0, skip_bad_files=args.skip_bad_files)
    translation = model.task == "translation"
    if args.phase:
        phase = args.phase
    elif translation:
        phase = ev.held_out_phase(data) or data.phase
        if phase == data.phase:
            log.warning("%s has no test or val phase: evaluating on its %s images, which the "
                        "model may have trained on", args.data, data.phase)
    else:
        phase = data.phase
    data = dataclasses.replace(data, phase=phase)
    dataset = ev.build_eval_dataset(model, data)
    n_items = len(dataset)  # type: ignore[arg-type]
    n = min(args.max_images or n_items, n_items)
    indices = list(range(n)) if translation else ev.evenly_spaced(n_items, n)
    eval_set = ev.EvalSet(dataset, indices, f"{n} samples of the {phase} phase of {args.data}",
                          ev.kind_of(model, dataset))
    with_targets = ev.has_targets(model, dataset)
    features = not (args.no_fid and with_targets)
    if args.no_fid and not with_targets:
        log.warning("--no-fid ignored: without targets FID is the only measure")
    ex = _extractor(args, model.device) if features else None
    result: dict[str, Any] = {"mode": "checkpoint", "checkpoint": str(checkpoint),
                              "model": model.name, "task": model.task, "data": args.data,
                              "phase": phase, "pairing": eval_set.data_kind}
    key = _real_key(model, data, eval_set, ex) if ex is not None else ""
    real = _cached_real(data, key, args) if ex is not None else None
    if translation:
        out = ev.translate_and_measure(model, eval_set, batch_size=min(args.batch_size, 16),
                                       extractor=ex, real_features=real is None, progress=True)
    else:
        if real is None:
            real = _store_real(data, key, args,
                               ev.dataset_features(eval_set, ex, batch_size=args.batch_size,
                                                   progress=True))
        num = args.num_samples or n
        fake = ev.sample_features(model, num, ex, seed=args.seed, batch_size=args.batch_size,
                                  progress=True)
        out = ev.Outputs(fake_features=[fake], n_fake=num, n_real=real.n)
    if ex is not None and real is None:
        import numpy as np

        real = _store_real(data, key, args, np.concatenate(out.real_features))
    values, real = ev.summarize(out, fid=features, kid=args.kid and features, real_stats=real,
                                kid_subsets=args.kid_subsets,
                                kid_subset_size=args.kid_subset_size, seed=args.seed)
    metrics = {k: v for k, v in values.items() if k != "kid_std"}
    if "kid" in metrics:
        metrics["kid_mean"] = metrics.pop("kid")
        metrics["kid_std"] = values["kid_std"]
    result.update(n_fake=out.n_fake, n_real=real.n if real is not None else out.n_real,
                  metrics=metrics, kid_subsets=args.kid_subsets if args.kid else None)
    if ex is not None:
        result.update(_feature_info(ex))
    return result


def _real_key(model: Any, data: Any, eval_set: Any, ex: Any) -> str:
    from gankit.config import to_dict
    from gankit.metrics.cache import cache_key, file_fingerprint

    root = Path(data.data).expanduser()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    options = {k: v for k, v in to_dict(data).items() if k not in ("workers", "data")}
    return cache_key(kind="dataset", files=file_fingerprint(files), data=options,
                     task=model.task, pairing=eval_set.data_kind, indices=eval_set.indices,
                     channels=list(getattr(model, "io_channels", lambda: (0, 0))()),
                     feature=ex.key)


def _cached_real(data: Any, key: str, args: argparse.Namespace) -> Any:
    from gankit.metrics.cache import stats_path
    from gankit.metrics.stats import FeatureStats

    path = stats_path(f"{Path(data.data).name}-{data.phase}", key)
    if args.no_cache or not path.is_file():
        return None
    log.info("using cached reference statistics %s", path)
    return FeatureStats.load(path)


def _store_real(data: Any, key: str, args: argparse.Namespace, features: Any) -> Any:
    from gankit.metrics.cache import stats_path
    from gankit.metrics.stats import FeatureStats

    stats = FeatureStats.from_features(features, "real")
    if not args.no_cache:
        path = stats_path(f"{Path(data.data).name}-{data.phase}", key)
        try:
            stats.save(path)
            log.info("cached the reference statistics in %s", path)
        except OSError as exc:
            log.warning("could not cache the statistics in %s (%s)", path, exc)
    return stats


_LABELS = {"l1": ("L1", "mean |output - target| on the [0, 1] scale"),
           "psnr": ("PSNR", "dB, mean over images"),
           "ssim": ("SSIM", "Gaussian 11x11, sigma 1.5, mean over images"),
           "fid": ("FID", ""), "kid_mean": ("KID", "")}


def format_table(result: dict[str, Any]) -> str:
    """The results as a small text table, with the protocol and weights used."""
    lines = []
    if result["mode"] == "folders":
        lines.append(f"real: {result['real']} ({result['n_real']} images)")
        lines.append(f"fake: {result['fake']} ({result['n_fake']} images)")
    else:
        lines.append(f"{result['model']} ({result['task']}) from {result['checkpoint']}")
        lines.append(f"data: {result['data']}, {result['phase']} phase ({result['pairing']}): "
                     f"{result['n_fake']} generated/translated, {result['n_real']} real images")
    lines.append("")
    lines.append(f"{'metric':8s} {'value':>20s}")
    metrics = result["metrics"]
    for key, (label, note) in _LABELS.items():
        if key not in metrics:
            continue
        value = metrics[key]
        if key == "kid_mean":
            text = f"{value:.5f} ± {metrics['kid_std']:.5f}"
            note = f"unbiased MMD², mean ± std over {result['kid_subsets']} subsets"
        elif key == "fid":
            text = f"{value:.3f}"
            note = f"{result['n_fake']} vs {result['n_real']} images"
        else:
            text = f"{value:.4f}" if math.isfinite(value) else "n/a"
        lines.append(f"{label:8s} {text:>20s}   {note}")
    if "protocol" in result:
        lines.append("")
        lines.append(f"resize protocol: {result['protocol']} ({result['protocol_description']})")
        w = result["weights"]
        kind = ("the TF 2015-12-05 FID Inception-v3" if w["standard"]
                else "NON-STANDARD weights: not comparable to published FIDs")
        lines.append(f"Inception weights: {w['path']} (sha256 {w['sha256'][:12]}..., {kind})")
    return "\n".join(lines)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
