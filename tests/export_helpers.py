"""Small models and checkpoints shared by the export, release, serve and page tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import gankit
from gankit.config import to_dict
from gankit.data.config import DataConfig
from gankit.models.base import GANModel
from gankit.train.checkpoint import save_checkpoint
from gankit.train.config import TrainConfig


def tiny(name: str, seed: int = 0, **options) -> GANModel:
    """A small untrained model whose outputs vary with the input (std 0.3 to 0.4): with the
    papers' init gain of 0.02 a 32 px U-Net's outputs all sit near 0, and any export would
    match them."""
    torch.manual_seed(seed)
    defaults = {"generator": "unet_32", "ngf": 8, "ndf": 8, "init_gain": 0.1}
    if name == "cyclegan":
        defaults = {"generator": "resnet_6blocks", "ngf": 8, "ndf": 8}
    return gankit.create(name, **{**defaults, **options}).eval()


def images(shape, seed=0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=gen) * 2 - 1


def save_tiny_checkpoint(path: Path, model: GANModel, *, crop_size: int = 64,
                         batch_size: int = 4) -> Path:
    """A checkpoint as the engine writes it (the keys gankit.load reads), without training."""
    state = {
        "model": model.name,
        "model_config": to_dict(model.config),
        "data_config": to_dict(DataConfig(load_size=crop_size, crop_size=crop_size)),
        "train_config": to_dict(TrainConfig(batch_size=batch_size)),
        "networks": model.state_dict(),
        "optimizers": {},
        "epoch": 1,
        "step": 10,
    }
    return save_checkpoint(state, path)


def png_bytes(array: np.ndarray, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **params)
    return buffer.getvalue()


def random_pixels(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rng.integers(0, 256, shape, dtype=np.uint8)


GENERATORS = {  # case: (model, options) of small generative models for export and serving
    "dcgan": ("dcgan", {"image_size": 16, "channels": 1, "ngf": 8, "ndf": 8, "latent_dim": 12}),
    "cgan-mlp": ("cgan", {"image_size": 16, "channels": 1, "num_classes": 3, "latent_dim": 10,
                          "hidden_z": 16, "hidden_y": 8, "hidden_g": 32, "maxout_x": 8,
                          "maxout_y": 8, "maxout_joint": 8}),
    "cgan-conv": ("cgan", {"image_size": 16, "channels": 3, "num_classes": 4, "net": "dcgan",
                           "ngf": 8, "ndf": 8, "latent_dim": 10}),
    "acgan": ("acgan", {"image_size": 16, "channels": 1, "num_classes": 5, "ngf": 8, "ndf": 8,
                        "latent_dim": 10}),
    "aae-mixture": ("aae", {"image_size": 8, "channels": 1, "hidden": 16, "hidden_d": 16,
                            "prior": "mixture", "latent_dim": 3}),
    "gan": ("gan", {"image_size": 8, "channels": 1, "hidden_g": 16, "hidden_d": 16,
                    "latent_dim": 8}),
}


def tiny_generator(case: str, seed: int = 0, class_names: list[str] | None = None) -> GANModel:
    """A small untrained generative model whose samples vary (std above 0.05) and whose batch
    norms have running statistics of their own, so a wrong export cannot pass for a right one
    (with DCGAN's init gain of 0.02 every sample is near 0)."""
    from gankit.nn.init import init_weights

    name, options = GENERATORS[case]
    torch.manual_seed(seed)
    model = gankit.create(name, **options)
    init_weights(model, "normal", 0.2)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    if class_names is not None:
        model.class_names = list(class_names)
    return model.eval()


def save_generator_checkpoint(path: Path, model: GANModel) -> Path:
    """A generative model's checkpoint as the engine writes it (class names included)."""
    state = {
        "model": model.name,
        "model_config": to_dict(model.config),
        "data_config": to_dict(DataConfig()),
        "train_config": to_dict(TrainConfig(batch_size=16)),
        "networks": model.state_dict(),
        "extra": model.extra_state(),
        "optimizers": {},
        "epoch": 1,
        "step": 10,
    }
    return save_checkpoint(state, path)
