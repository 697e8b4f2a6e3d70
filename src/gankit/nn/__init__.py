"""Building-block networks shared by every model: generators, discriminators, norms, init."""

from gankit.nn.factory import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator
from gankit.nn.init import INIT_KINDS, InitKind, init_weights
from gankit.nn.norms import NORM_KINDS, NormKind, norm_layer, uses_bias
from gankit.nn.padding import check_multiple, crop_to, pad_to_multiple, run_any_size
from gankit.nn.patchgan import PatchDiscriminator, PixelDiscriminator
from gankit.nn.resnet import ResnetBlock, ResnetGenerator
from gankit.nn.unet import UnetGenerator

__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "INIT_KINDS",
    "NORM_KINDS",
    "InitKind",
    "NormKind",
    "PatchDiscriminator",
    "PixelDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "UnetGenerator",
    "build_discriminator",
    "build_generator",
    "check_multiple",
    "crop_to",
    "init_weights",
    "norm_layer",
    "pad_to_multiple",
    "run_any_size",
    "uses_bias",
]
