"""gankit: train, evaluate and serve GANs on one PyTorch engine.

>>> import gankit
>>> gankit.list_models()
>>> model = gankit.load("runs/my-run")          # rebuilds the model from its checkpoint
>>> picture = model.translate("edges.png")
>>> digits = gankit.sample("runs/my-dcgan-run", n=64)   # (64, C, H, W) in [-1, 1]
"""

from gankit.api import create, load, resume, sample, train, trainer, translate
from gankit.registry import list_models

__all__ = ["create", "list_models", "load", "resume", "sample", "train", "trainer", "translate"]
__version__ = "0.1.0"
