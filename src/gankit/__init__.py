"""gankit: train, evaluate and serve GANs on one PyTorch engine.

>>> import gankit
>>> gankit.list_models()
>>> model = gankit.load("runs/my-run")          # rebuilds the model from its checkpoint
>>> picture = model.translate("edges.png")
"""

from gankit.api import create, load, resume, train, trainer
from gankit.registry import list_models

__all__ = ["create", "list_models", "load", "resume", "train", "trainer"]
__version__ = "0.1.0"
