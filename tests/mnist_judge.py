"""A small MNIST classifier, trained once per test session, that judges generated digits.

It learns from images 5000..8999 of the real MNIST test set; generative models in the tests
train on images 0..4999, so the judge never saw their training images. Besides labels and
confidences it gives a Fréchet distance in its own feature space (the FID idea with a digit
classifier instead of Inception) to images 9000..9999, which neither the judge nor the models
trained on: it separates digits from noise, punishes missing classes, and does not reward a
generator for copying its training images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import linalg
from torch import nn
from torch.nn import functional as F

from gankit.data.idx import read_idx

JUDGE_SPLIT = 5000  # models train on [0, 5000); the judge on [5000, 9000)
REFERENCE = slice(9000, 10000)  # the distance's real digits: seen by no one


def mnist_arrays(shared: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The real MNIST test set as (N, 1, 28, 28) in [-1, 1] and (N,) labels."""
    images = read_idx(shared / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(shared / "mnist" / "t10k-labels-idx1-ubyte.gz")
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0)[:, None]
    return x, torch.from_numpy(labels.astype(np.int64))


class JudgeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc1(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


@dataclass
class Verdict:
    accuracy_vs: float | None  # share classified as the requested labels (when given)
    confident: float  # share of images with max probability above 0.9
    classes: int  # classes that at least 3% of the images fall into
    distance: float  # Fréchet distance to unseen real digits in the judge's feature space


class MnistJudge:
    def __init__(self, shared: Path, seed: int = 0, epochs: int = 4) -> None:
        x, y = mnist_arrays(shared)
        self.reference = x[REFERENCE]
        x, y = x[JUDGE_SPLIT:], y[JUDGE_SPLIT:]
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.net = JudgeNet()
        opt = torch.optim.Adam(self.net.parameters(), 1e-3)
        train_x, train_y, self.val_x, self.val_y = x[:4000], y[:4000], x[4000:], y[4000:]
        for _ in range(epochs):
            order = torch.randperm(len(train_x), generator=gen)
            for i in range(0, len(order), 64):
                idx = order[i:i + 64]
                # small random shifts, so the judge is not fooled by off-centre digits
                batch = torch.roll(train_x[idx], shifts=tuple(
                    int(s) for s in torch.randint(-2, 3, (2,), generator=gen)), dims=(2, 3))
                loss = F.cross_entropy(self.net(batch), train_y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.net.eval()
        self.accuracy = float((self.predict(self.val_x)[0] == self.val_y).float().mean())
        self._real_stats = self._stats(self.reference)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(labels, max probability) of (N, 1, 28, 28) images in [-1, 1]."""
        probs = F.softmax(self.net(images.float().clamp(-1, 1)), dim=1)
        conf, labels = probs.max(dim=1)
        return labels, conf

    @torch.no_grad()
    def _stats(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        f = self.net.features(images.float().clamp(-1, 1)).double().numpy()
        # a small ridge: dead ReLU units make the covariance singular
        return f.mean(0), np.cov(f, rowvar=False) + 1e-6 * np.eye(f.shape[1])

    def distance(self, images: torch.Tensor) -> float:
        mu1, s1 = self._real_stats
        mu2, s2 = self._stats(images)
        covmean = linalg.sqrtm(s1 @ s2).real
        return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))

    def judge(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> Verdict:
        if images.shape[1:] != (1, 28, 28):
            raise ValueError(f"the judge reads (N, 1, 28, 28) images, not {tuple(images.shape)}")
        predicted, conf = self.predict(images)
        counts = torch.bincount(predicted, minlength=10)
        return Verdict(
            accuracy_vs=None if labels is None else float((predicted == labels).float().mean()),
            confident=float((conf > 0.9).float().mean()),
            classes=int((counts >= 0.03 * len(images)).sum()),
            distance=self.distance(images),
        )
