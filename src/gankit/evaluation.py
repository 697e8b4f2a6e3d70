"""Evaluate a model on held-out data: translate (or sample), then measure.

Used by ``gankit evaluate CHECKPOINT --data DATASET`` and by the training engine's
``--eval-every``. What is measured is what the model class declares (``metrics``), limited by
its data kind (:mod:`gankit.data.kinds`), never decided by a model's name:

  translation, the kind has targets (paired,   L1, PSNR, SSIM vs the targets; FID/KID of the
  colorization)                                outputs vs the targets
  translation, no targets (unpaired)           FID/KID of the A->B outputs vs the B images
  generation                                   FID/KID of ``model.sample(n)`` vs the data

The held-out set is the dataset's ``test`` phase, else its ``val`` phase; without either, a
fixed, evenly spaced subset of the training data (the log says so). Evaluation runs inside
``model.inference()``, which forks the global RNGs, and reads samples by plain index (each
sample's random choices come from its own generator), so it never changes the random stream of
training: a run with evaluation trains exactly as one without.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from gankit.build import Configs, build_dataset_for
from gankit.data.config import DataConfig
from gankit.data.kinds import data_kind_of, get_data_kind
from gankit.errors import ConfigError, DataError
from gankit.metrics.features import FeatureExtractor
from gankit.metrics.frechet import fid_from_stats
from gankit.metrics.kid import kernel_inception_distance
from gankit.metrics.paired import l1_per_image, psnr_per_image, ssim_per_image
from gankit.metrics.stats import FeatureStats
from gankit.models.base import GANModel
from gankit.train.config import TrainConfig

log = logging.getLogger(__name__)

HELD_OUT_PHASES = ("test", "val")
PAIRED_METRICS = ("l1", "psnr", "ssim")
FEATURE_METRICS = ("fid", "kid")
HIGHER_IS_BETTER = {"l1": False, "psnr": True, "ssim": True, "fid": False, "kid": False}


# --- what to evaluate on ------------------------------------------------------------------------
@dataclass
class EvalSet:
    """Samples ``indices`` of ``dataset`` (read by plain index: deterministic)."""

    dataset: Dataset
    indices: list[int]
    description: str
    data_kind: str = "single"

    @property
    def has_targets(self) -> bool:
        return get_data_kind(self.data_kind).has_targets


def kind_of(model: GANModel, dataset: Dataset | None = None) -> str:
    """The name of the data kind: the dataset's own (a paired dataset given to an unpaired
    model stays paired), else the model's."""
    return data_kind_of(dataset, model.data_kind).name


def has_targets(model: GANModel, dataset: Dataset | None = None) -> bool:
    return model.task == "translation" and get_data_kind(kind_of(model, dataset)).has_targets


def held_out_phase(data: DataConfig) -> str | None:
    """``test`` or ``val`` if the dataset folder has that phase (and it is not the training
    phase), else None."""
    root = Path(data.data).expanduser()
    if not data.data or not root.is_dir():
        return None
    for phase in HELD_OUT_PHASES:
        if phase == data.phase:
            continue
        if (root / phase).is_dir() or ((root / f"{phase}A").is_dir()
                                       and (root / f"{phase}B").is_dir()):
            return phase
    return None


def build_eval_dataset(model: GANModel, data: DataConfig) -> Dataset:
    """The dataset of ``data`` as ``model`` reads it, with evaluation transforms (no random
    crops or flips)."""
    configs = Configs(type(model), model.config, data, TrainConfig())
    return build_dataset_for(configs, model, train=False)


def evenly_spaced(n_items: int, n: int) -> list[int]:
    if n >= n_items:
        return list(range(n_items))
    return sorted({int(i) for i in np.linspace(0, n_items - 1, n).round()})


def held_out_set(model: GANModel, data: DataConfig, n: int,
                 training: Dataset | None = None) -> EvalSet:
    """Up to ``n`` held-out samples: the test phase, else val, else a fixed subset of the
    training data (``training``, or the dataset of ``data`` read with eval transforms)."""
    phase = held_out_phase(data) if model.task == "translation" else None
    if phase is not None:
        dataset = build_eval_dataset(model, dataclasses.replace(data, phase=phase,
                                                                max_items=None))
        indices = list(range(min(n, len(dataset))))  # type: ignore[arg-type]
        where = f"the {phase} phase of {data.data}"
    else:
        dataset = training if training is not None else build_eval_dataset(model, data)
        indices = evenly_spaced(len(dataset), n)  # type: ignore[arg-type]
        what = "the dataset has no test or val phase" if model.task == "translation" else \
            "generation is measured against the training data"
        where = f"a fixed subset of the training data of {data.data or 'the run'} ({what})"
    description = f"{len(indices)} samples from {where}"
    return EvalSet(dataset, indices, description, kind_of(model, dataset))


# --- running the model --------------------------------------------------------------------------
def _batches(dataset: Dataset, indices: Sequence[int], batch_size: int
             ) -> Iterator[dict[str, Any]]:
    """Consecutive samples of equal size, collated (sizes may differ across a dataset)."""
    pending: list[dict[str, Any]] = []
    shape: tuple | None = None
    for i in indices:
        item = dataset[i]
        item_shape = tuple(tuple(v.shape) for v in item.values() if isinstance(v, torch.Tensor))
        if pending and (item_shape != shape or len(pending) == batch_size):
            yield default_collate(pending)
            pending = []
        pending.append(item)
        shape = item_shape
    if pending:
        yield default_collate(pending)


@dataclass
class Outputs:
    """Per-image paired metrics, and features (or images) of the fake and real sets."""

    paired: dict[str, list[float]] = field(default_factory=dict)
    fake_features: list[np.ndarray] = field(default_factory=list)
    real_features: list[np.ndarray] = field(default_factory=list)
    n_fake: int = 0
    n_real: int = 0


def translate_and_measure(model: GANModel, eval_set: EvalSet, *, batch_size: int = 8,
                          paired: bool = True, extractor: FeatureExtractor | None = None,
                          real_features: bool = True, progress: bool = False) -> Outputs:
    """Translate the held-out inputs (A -> B) and measure them batch by batch."""
    out = Outputs()
    targets = eval_set.has_targets
    seen_b: set[str] = set()
    bar = _bar(progress, len(eval_set.indices), "translating")
    for batch in _batches(eval_set.dataset, eval_set.indices, batch_size):
        with model.inference():
            batch = model.to_device(batch)
            a = batch["A"]
            fake = model.finish_output(a, model.run_generator(a)).float().clamp(-1, 1)
            real = None
            if targets:
                real = model.finish_output(a, batch["B"]).float().clamp(-1, 1)
            elif "B" in batch:  # unpaired: each B image once, as the real set
                keep = [j for j, p in enumerate(batch.get("B_path", [])) if p not in seen_b]
                seen_b.update(batch.get("B_path", []))
                real = batch["B"][keep].float() if keep else None
        fake, real = fake.cpu(), None if real is None else real.cpu()
        out.n_fake += fake.shape[0]
        if targets and paired and real is not None:
            for name, fn in (("l1", l1_per_image), ("psnr", psnr_per_image),
                             ("ssim", _ssim_or_nan)):
                out.paired.setdefault(name, []).extend(fn(fake, real).tolist())
        if extractor is not None:
            out.fake_features.append(extractor.from_tensors(fake))
            if real_features and real is not None and real.shape[0]:
                out.real_features.append(extractor.from_tensors(real))
        if real is not None:
            out.n_real += real.shape[0]
        bar.update(fake.shape[0])
    bar.close()
    return out


def _ssim_or_nan(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    try:
        return ssim_per_image(fake, real)
    except DataError:  # images smaller than the SSIM window
        return torch.full((fake.shape[0],), math.nan, dtype=torch.float64)


def sample_features(model: GANModel, n: int, extractor: FeatureExtractor, *, seed: int = 0,
                    batch_size: int = 50, progress: bool = False) -> np.ndarray:
    """Features of ``n`` samples of a generation model, drawn in batches with fixed seeds."""
    sample = getattr(model, "sample", None)
    if not callable(sample):
        raise ConfigError(f"{model.name} is a generation model without sample(n, labels, "
                          "seed); it cannot be evaluated")
    chunks = []
    bar = _bar(progress, n, "sampling")
    done = 0
    k = 0
    while done < n:
        m = min(batch_size, n - done)
        with model.inference():
            images = sample(m, seed=seed + k)
        chunks.append(extractor.from_tensors(images.detach().float().cpu()))
        done += m
        k += 1
        bar.update(m)
    bar.close()
    return np.concatenate(chunks)


def real_image(item: dict[str, Any]) -> torch.Tensor:
    """The real image of a dataset sample of a generation model."""
    for key in ("image", "A"):
        if isinstance(item.get(key), torch.Tensor):
            return item[key]
    raise DataError(f"a dataset sample has no image under 'image' or 'A' (keys: "
                    f"{', '.join(item)})")


def dataset_features(eval_set: EvalSet, extractor: FeatureExtractor, *,
                     batch_size: int = 50, progress: bool = False) -> np.ndarray:
    """Features of the real images of ``eval_set`` (generation models)."""
    chunks = []
    bar = _bar(progress, len(eval_set.indices), "real images")
    for start in range(0, len(eval_set.indices), batch_size):
        chunk = eval_set.indices[start:start + batch_size]
        images = [real_image(eval_set.dataset[i]) for i in chunk]
        chunks.append(extractor.from_tensors(images))
        bar.update(len(chunk))
    bar.close()
    return np.concatenate(chunks)


# --- metrics from outputs -----------------------------------------------------------------------
def summarize(out: Outputs, *, fid: bool, kid: bool, real_stats: FeatureStats | None = None,
              kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 0
              ) -> tuple[dict[str, float], FeatureStats | None]:
    """Average the paired metrics; FID/KID from the collected features. Returns the values
    and the real statistics (to reuse them at the next evaluation)."""
    values = {k: float(np.nanmean(v)) for k, v in out.paired.items() if v}
    if not (fid or kid):
        return values, real_stats
    if real_stats is None:
        if not out.real_features:
            raise DataError("no real images to compare the outputs with")
        real_stats = FeatureStats.from_features(np.concatenate(out.real_features), "real")
    fake_stats = FeatureStats.from_features(np.concatenate(out.fake_features), "generated")
    if fid:
        values["fid"] = fid_from_stats(real_stats, fake_stats)
    if kid:
        assert real_stats.features is not None and fake_stats.features is not None
        result = kernel_inception_distance(real_stats.features, fake_stats.features,
                                           subsets=kid_subsets, subset_size=kid_subset_size,
                                           seed=seed)
        values["kid"] = result.mean
        values["kid_std"] = result.std
    return values, real_stats


# --- during training ----------------------------------------------------------------------------
def usable_metrics(model: GANModel, dataset: Dataset | None = None) -> tuple[str, ...]:
    """The metrics the model declares, less the paired ones where its data has no targets."""
    targets = has_targets(model, dataset)
    return tuple(m for m in model.metrics if targets or m not in PAIRED_METRICS)


def resolve_metric(metric: str, model: GANModel, dataset: Dataset | None = None) -> str:
    """``auto``: the first metric the model declares that its data allows (L1 for
    translation with targets, FID otherwise); a paired metric without targets is a
    :class:`ConfigError`."""
    usable = usable_metrics(model, dataset)
    if metric == "auto":
        if not usable:
            raise ConfigError(f"{model.name} declares no metric that its data allows")
        return usable[0]
    if metric in PAIRED_METRICS and not has_targets(model, dataset):
        raise ConfigError(
            f"--eval-metric {metric} needs ground-truth targets, which {model.name} on "
            f"{kind_of(model, dataset)} data does not have; use --eval-metric fid or kid")
    if metric not in HIGHER_IS_BETTER or metric not in model.metrics:
        raise ConfigError(f"unknown --eval-metric {metric!r} for {model.name}; use auto, "
                          + ", ".join(m for m in HIGHER_IS_BETTER if m in model.metrics))
    return metric


class Evaluator:
    """Periodic evaluation of a training run on a fixed held-out set."""

    def __init__(self, model: GANModel, training: Dataset, data: DataConfig, *,
                 metric: str = "auto", images: int = 500, seed: int = 0,
                 batch_size: int = 8) -> None:
        self.model = model
        self.metric = resolve_metric(metric, model, training)
        self.key = f"eval_{self.metric}"
        self.higher_is_better = HIGHER_IS_BETTER[self.metric]
        self.seed = seed
        self.batch_size = batch_size
        self.images = images
        self.eval_set = held_out_set(model, data, images, training)
        if self.metric in PAIRED_METRICS and not self.eval_set.has_targets:
            raise ConfigError(f"--eval-metric {self.metric} needs targets, but the held-out "
                              f"set ({self.eval_set.description}) has none; use fid")
        self._extractor: FeatureExtractor | None = None
        self._real: FeatureStats | None = None
        if self.metric in FEATURE_METRICS:
            if self.images < 2:
                raise ConfigError(f"--eval-metric {self.metric} needs --eval-images of at "
                                  "least 2")
            from gankit.metrics.weights import find_weights

            self._weights = find_weights()  # missing weights fail now, not hours from now
        log.info("evaluation (%s, %s is better) on %s", self.key,
                 "higher" if self.higher_is_better else "lower", self.eval_set.description)

    def better(self, value: float, best: float | None) -> bool:
        if not math.isfinite(value):
            return False
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best

    def extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            self._extractor = FeatureExtractor(self._weights, device=self.model.device)
        return self._extractor

    def run(self) -> dict[str, float]:
        """The metric (and its companions) on the held-out set, keyed ``eval_NAME``."""
        features = self.metric in FEATURE_METRICS
        if self.model.task == "generation":
            values = self._run_generation()
        else:
            out = translate_and_measure(
                self.model, self.eval_set, batch_size=self.batch_size, paired=not features,
                extractor=self.extractor() if features else None,
                real_features=self._real is None)
            values, self._real = summarize(out, fid=self.metric == "fid",
                                           kid=self.metric == "kid", real_stats=self._real,
                                           seed=self.seed)
        return {f"eval_{k}": v for k, v in values.items()}

    def _run_generation(self) -> dict[str, float]:
        ex = self.extractor()
        if self._real is None:
            real = dataset_features(self.eval_set, ex)
            self._real = FeatureStats.from_features(real, "real")
        fake = sample_features(self.model, self.images, ex, seed=self.seed)
        out = Outputs(fake_features=[fake], n_fake=len(fake))
        values, _ = summarize(out, fid=self.metric == "fid", kid=self.metric == "kid",
                              real_stats=self._real, seed=self.seed)
        return values


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(enabled: bool, total: int, desc: str) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="img", desc=desc, leave=False)
