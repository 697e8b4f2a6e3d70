"""Which convolutions carry a bias: the official pix2pix/CycleGAN layout, or gankit 1's.

The official networks (junyanz/pytorch-CycleGAN-and-pix2pix) give a convolution a bias only
when instance norm is used; with batch norm or no norm every conv that a norm could follow
has none, including the outermost and innermost U-Net down convs and the PixelGAN's last
conv. The output convs (U-Net up conv to the image, ResNet 7x7 tail, PatchGAN first and last
conv) always have one. gankit 1 kept a bias wherever no BatchNorm followed. New models use
the official layout; checkpoints and releases written before the layout was recorded in the
model config are read with gankit 1's (:func:`upgrade_model_config`), so they load with
their weights and outputs unchanged.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from gankit.errors import ConfigError
from gankit.nn.norms import check_norm, uses_bias

ConvBias = Literal["official", "gankit1"]
CONV_BIAS_LAYOUTS: tuple[str, ...] = get_args(ConvBias)
LAYOUT_FIELD = "conv_bias"
# The checkpoint and release format version that first records ``conv_bias``.
FIRST_RECORDING_VERSION = 2


def check_layout(layout: str) -> None:
    if layout not in CONV_BIAS_LAYOUTS:
        raise ConfigError(f"unknown conv bias layout {layout!r}; use one of "
                          f"{', '.join(CONV_BIAS_LAYOUTS)} (official matches pix2pix/CycleGAN)")


def norm_bias(norm: str, layout: str = "official") -> bool:
    """Whether a conv that ``norm`` follows (or could follow) gets a bias.

    official: only with instance norm (the reference's ``use_bias``, which is False for
    batch, none and, here, layer norm); gankit1: unless BatchNorm follows.
    """
    check_norm(norm)
    check_layout(layout)
    return norm == "instance" if layout == "official" else uses_bias(norm)


def upgrade_model_config(
    model_name: str, model_config: dict[str, Any], format_version: int
) -> dict[str, Any]:
    """The saved ``model_config`` of a checkpoint or release, ready for today's Config class.

    Files of format version 1 (and older) were written before ``conv_bias`` existed, by
    networks with gankit 1's biases: a model whose Config has the field gets
    ``conv_bias="gankit1"`` so it rebuilds the exact networks its weights belong to. Newer
    files, models without the field and unknown model names (the loader reports those) are
    returned unchanged. The input dict is not modified.
    """
    if format_version >= FIRST_RECORDING_VERSION or LAYOUT_FIELD in model_config:
        return model_config
    if not _has_layout_field(model_name):
        return model_config
    return {**model_config, LAYOUT_FIELD: "gankit1"}


def _has_layout_field(model_name: str) -> bool:
    import dataclasses

    from gankit.registry import get_model_class  # late: nn sits below the models

    try:
        cls = get_model_class(model_name)
    except ConfigError:
        return False
    config_cls = getattr(cls, "Config", None)
    if config_cls is None or not dataclasses.is_dataclass(config_cls):
        return False
    return LAYOUT_FIELD in {f.name for f in dataclasses.fields(config_cls)}


def state_mismatch(
    expected: dict[str, Any],
    found: dict[str, Any],
    limit: int = 4,
    shown: dict[str, str] | None = None,
) -> list[str]:
    """What keeps ``found`` (a state dict) from loading into a network whose state dict is
    ``expected``: lines naming a few missing and unexpected keys and shape mismatches, with
    their counts; empty when every key and shape agree. ``shown`` names keys of ``found`` as
    the user knows them (the names in their file, before renaming)."""
    shown = shown or {}
    missing = [k for k in expected if k not in found]
    unexpected = [shown.get(k, k) for k in found if k not in expected]
    shapes = [
        f"{shown.get(k, k)} {tuple(found[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in expected if k in found and tuple(found[k].shape) != tuple(expected[k].shape)
    ]
    lines = []
    for what, items in (("missing", missing), ("unexpected", unexpected),
                        ("of another shape", shapes)):
        if items:
            more = f", ... ({len(items)} in all)" if len(items) > limit else ""
            lines.append(f"{what}: {', '.join(items[:limit])}{more}")
    return lines
