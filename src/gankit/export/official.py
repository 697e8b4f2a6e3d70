"""Official pix2pix/CycleGAN weights (junyanz/pytorch-CycleGAN-and-pix2pix) as gankit releases.

The official code saves one state dict per network, ``{epoch}_net_{G,D,G_A,G_B,D_A,D_B}.pth``
(``latest_net_G.pth`` for the released pretrained generators). gankit's networks are the same
layers, parameter for parameter, in the official bias layout (:mod:`gankit.nn.layout`); only
the key names of the U-Net (nested ``model.model.1.model.3...`` there, ``model.inner.inner``
here), the ResNet blocks (``conv_block`` / ``block``) and the PixelGAN (``net`` / ``model``)
differ. Loading follows the official loader: a DataParallel ``module.`` prefix is dropped,
and so are the ``running_mean`` / ``running_var`` / ``num_batches_tracked`` entries that
instance norms saved by old PyTorch versions carry but that an instance norm without running
statistics does not have. The architecture (generator, ngf, norm, channels, ResNet dropout)
is read from the key names and shapes; options given by hand win, and a wrong one gets the
mismatching keys and the options the weights point to.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from gankit.errors import CheckpointError, ConfigError
from gankit.nn.layout import state_mismatch

log = logging.getLogger(__name__)

MODELS: tuple[str, ...] = ("pix2pix", "cyclegan", "colorization")
# the networks each model keeps and the official file name of each
OFFICIAL_NAMES: dict[str, dict[str, str]] = {
    "pix2pix": {"G": "G", "D": "D"},
    "colorization": {"G": "G", "D": "D"},
    "cyclegan": {"G_A": "G_A", "G_B": "G_B", "D_A": "D_A", "D_B": "D_B"},
}
_STATS = ("running_mean", "running_var", "num_batches_tracked")
_NAME = re.compile(r"(?P<prefix>.*)_net_(?P<net>[A-Za-z_]+)\.pth")


# --- reading ------------------------------------------------------------------------------
def read_official_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in an official ``.pth`` file (read with ``weights_only=True``), without
    a DataParallel ``module.`` prefix."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist; give an official *_net_G.pth file "
                              "(for example checkpoints/facades_pix2pix/latest_net_G.pth)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle means "not weights"
        raise CheckpointError(
            f"{path} is not a readable PyTorch state dict ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120] if str(exc) else 'no details'}); it may be cut "
            "short: download or copy it again"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or \
            not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path} is a PyTorch file but not a state dict of one network "
                              "(names -> tensors) as the official code saves")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def sibling(path: Path, net: str) -> Path | None:
    """The official file of network ``net`` saved beside ``path`` (same epoch prefix)."""
    match = _NAME.fullmatch(path.name)
    if match is None:
        return None
    candidate = path.with_name(f"{match['prefix']}_net_{net}.pth")
    return candidate if candidate.is_file() and candidate != path else None


# --- key names ----------------------------------------------------------------------------
# U-Net layers by the index of the official block's Sequential: (gankit part, gankit index)
_UNET_OUTER = {0: ("down", 0), 3: ("up", 1)}
_UNET_MIDDLE = {1: ("down", 1), 2: ("down", 2), 5: ("up", 1), 6: ("up", 2)}
_UNET_INNER = {1: ("down", 1), 3: ("up", 1), 4: ("up", 2)}


def _unet_parts(key: str) -> tuple[int, int, str] | None:
    """(depth, layer index, parameter name) of an official U-Net key, or None."""
    parts = key.split(".")
    if len(parts) < 4 or parts[0] != "model":
        return None
    i, depth = 1, 0
    while i + 2 < len(parts) and parts[i] == "model" and parts[i + 1].isdigit():
        rest = parts[i + 2:]
        if rest[0] == "model":  # the submodule: one level deeper
            depth += 1
            i += 2
            continue
        return depth, int(parts[i + 1]), ".".join(rest)
    return None


def unet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official U-Net keys renamed to gankit's; keys it cannot place keep their name (so
    they show up as unexpected)."""
    parsed = {k: _unet_parts(k) for k in state}
    depths = [p[0] for p in parsed.values() if p is not None]
    innermost = max(depths, default=0)
    out = {}
    for key, value in state.items():
        p = parsed[key]
        if p is None:
            out[key] = value
            continue
        depth, index, param = p
        table = _UNET_OUTER if depth == 0 else _UNET_INNER if depth == innermost else \
            _UNET_MIDDLE
        if index not in table:
            out[key] = value
            continue
        part, local = table[index]
        out[f"model.{'inner.' * depth}{part}.{local}.{param}"] = value
    return out


def is_unet(state: dict[str, torch.Tensor]) -> bool:
    return any(k.startswith("model.model.") for k in state)


def is_resnet(state: dict[str, torch.Tensor]) -> bool:
    return any(".conv_block." in k for k in state)


def to_gankit_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An official generator's or discriminator's state dict with gankit's key names (in the
    same order)."""
    if is_unet(state):
        return unet_keys(state)
    if is_resnet(state):
        return {k.replace(".conv_block.", ".block."): v for k, v in state.items()}
    if any(k.startswith("net.") for k in state):  # PixelDiscriminator
        return {"model." + k[len("net."):] if k.startswith("net.") else k: v
                for k, v in state.items()}
    return dict(state)  # NLayerDiscriminator: the same names


def patch_norm_state(state: dict[str, torch.Tensor], net: nn.Module) -> dict[str, torch.Tensor]:
    """Files written before PyTorch 0.4, read as the official loader reads them: drop the
    running statistics that instance norms without them cannot take, and give batch norms
    the step counter (``num_batches_tracked``) they did not save yet."""
    modules = dict(net.named_modules())
    out = {}
    for key, value in state.items():
        owner, _, leaf = key.rpartition(".")
        module = modules.get(owner)
        if isinstance(module, _InstanceNorm) and leaf in _STATS and \
                getattr(module, leaf, None) is None:
            continue
        out[key] = value
    for name, module in modules.items():
        counter = f"{name}.num_batches_tracked"
        if isinstance(module, _BatchNorm) and module.track_running_stats and \
                f"{name}.running_mean" in out and counter not in out:
            out[counter] = torch.tensor(0, dtype=torch.long)
    return out


# --- what the weights say about the architecture ------------------------------------------
def _norm_from(state: dict[str, torch.Tensor], norm_prefix: str, conv_bias_key: str) -> str:
    if f"{norm_prefix}.weight" in state:
        return "batch"
    if f"{norm_prefix}.running_mean" in state or conv_bias_key in state:
        return "instance"  # old files keep instance-norm statistics; only instance has biases
    return "none"


def infer_generator(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """generator, ngf, norm, in/out channels (and ResNet dropout) of an official generator."""
    try:
        if is_unet(state):
            depth = max(p[0] for p in map(_unet_parts, state) if p is not None)
            first = state["model.model.0.weight"]
            last = state["model.model.3.weight"]  # ConvTranspose2d: (in, out, k, k)
            return {"generator": f"unet_{2 ** (depth + 1)}", "ngf": int(first.shape[0]),
                    "in_channels": int(first.shape[1]), "out_channels": int(last.shape[1]),
                    "norm": _norm_from(state, "model.model.1.model.2",
                                       "model.model.1.model.1.bias")}
        if is_resnet(state):
            blocks = {int(m[1]) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
            first = state["model.1.weight"]
            convs = [k for k, v in state.items() if k.endswith(".weight") and v.dim() == 4
                     and ".conv_block." not in k]
            last = state[max(convs, key=lambda k: int(k.split(".")[1]))]
            block = min(blocks)
            # the second conv of a block sits at index 6 after a Dropout, else at 5
            dropout = state.get(f"model.{block}.conv_block.6.weight", torch.empty(0)).dim() == 4
            return {"generator": f"resnet_{len(blocks)}blocks", "ngf": int(first.shape[0]),
                    "in_channels": int(first.shape[1]), "out_channels": int(last.shape[0]),
                    "norm": _norm_from(state, "model.2", "model.1.bias"), "dropout": dropout}
    except (KeyError, ValueError, IndexError):
        pass
    raise CheckpointError(
        "the file does not look like an official pix2pix/CycleGAN generator (a unet_* or "
        f"resnet_*blocks network); its first keys are {', '.join(list(state)[:4])}"
    )


def infer_discriminator(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """discriminator, ndf, n_layers_d of an official discriminator."""
    if "net.0.weight" in state:
        return {"discriminator": "pixel", "ndf": int(state["net.0.weight"].shape[0])}
    convs = [k for k, v in state.items() if k.endswith(".weight") and v.dim() == 4]
    if "model.0.weight" not in state or len(convs) < 3:
        raise CheckpointError("the file does not look like an official discriminator (basic, "
                              "n_layers or pixel); its first keys are "
                              + ", ".join(list(state)[:4]))
    n_layers = len(convs) - 2
    return {"discriminator": "basic" if n_layers == 3 else "n_layers", "n_layers_d": n_layers,
            "ndf": int(state["model.0.weight"].shape[0])}


# --- the release --------------------------------------------------------------------------
def _flags(options: dict[str, Any]) -> str:
    out = []
    for k, v in options.items():
        flag = "--" + k.replace("_", "-")
        out.append((flag if v else "--no-" + flag[2:]) if isinstance(v, bool) else f"{flag} {v}")
    return " ".join(out)


def _load_into(net: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str,
               inferred: dict[str, Any], given: dict[str, Any]) -> None:
    renamed = to_gankit_keys(state)
    original = dict(zip(renamed, state, strict=True))  # gankit name -> name in the file
    converted = patch_norm_state(renamed, net)
    problems = state_mismatch(net.state_dict(), converted, shown=original)
    problems = [p.replace("missing:", "missing (gankit's names):", 1) for p in problems]
    if problems:
        differing = {k: v for k, v in inferred.items() if given.get(k, v) != v}
        hint = (f"; the weights look like {_flags(differing)}: pass that, or leave the "
                "option out to read it from the weights" if differing else
                f"; the weights look like {_flags(inferred)}")
        raise CheckpointError(f"{path} does not fit the {what} asked for ("
                              + "; ".join(problems) + ")" + hint)
    net.load_state_dict(converted)


def import_official(
    path: str | Path,
    out: str | Path,
    model: str = "pix2pix",
    *,
    direction: str = "AtoB",
    **options: Any,
) -> Path:
    """Convert official weights at ``path`` (a ``*_net_G.pth`` / ``*_net_G_A.pth`` file or
    the folder holding ``latest_net_G.pth`` / ``latest_net_G_A.pth``) into a release at
    ``out``. ``options`` are model options (generator, ngf, norm, dropout, inference_mode,
    ...); the architecture options not given are read from the weights. Discriminators
    saved beside the generator are taken too; otherwise they are freshly initialised (what
    --init-from fine-tuning then starts from).
    """
    from gankit import config as cfgmod
    from gankit.api import create
    from gankit.data.config import DataConfig
    from gankit.export.release import save_release
    from gankit.registry import get_model_class

    if model not in MODELS:
        raise ConfigError(f"gankit import reads official {', '.join(MODELS)} weights, not "
                          f"{model!r}")
    path = Path(path)
    main = "G_A" if model == "cyclegan" else "G"
    if path.is_dir():
        names = (f"latest_net_{main}.pth", "latest_net_G.pth")
        present = [path / n for n in names if (path / n).is_file()]
        if not present:
            raise CheckpointError(f"{path} holds no {' or '.join(names)}; give the .pth file")
        path = present[0]
    g_state = read_official_state(path)
    inferred = infer_generator(g_state)
    files: dict[str, Path] = {main: path}
    states = {main: g_state}
    if model == "cyclegan":
        other = sibling(path, "G_B")
        if other is None:
            raise CheckpointError(
                f"no {path.name.replace('G_A', 'G_B')} beside {path}: a CycleGAN release needs "
                "both generators. A single official generator (the pretrained CycleGAN models' "
                "latest_net_G.pth) imports as a one-way model: gankit import PATH --model "
                "pix2pix"
            )
        files["G_B"], states["G_B"] = other, read_official_state(other)
    d_inferred: dict[str, Any] = {}
    for gk, official in OFFICIAL_NAMES[model].items():
        if gk.startswith("D") and (found := sibling(path, official)) is not None:
            files[gk], states[gk] = found, read_official_state(found)
            d_inferred = infer_discriminator(states[gk])
    if model == "colorization":
        inferred.pop("in_channels")
        inferred.pop("out_channels")
    settings = {**inferred, **d_inferred, **options, "conv_bias": "official"}
    if model == "cyclegan" and settings["in_channels"] != settings["out_channels"]:
        settings.setdefault("lambda_identity", 0.0)  # it needs the same channels both ways
    net = create(model, **settings)
    for gk, state in states.items():
        kind = "generator" if gk.startswith("G") else "discriminator"
        guess = inferred if kind == "generator" else d_inferred
        _load_into(getattr(net, gk), state, files[gk], f"{kind} {gk}", guess, options)
    net.trained_batch_size = 1  # the official default: pix2pix's "auto" runs in train mode
    cls = get_model_class(model)
    net.data_config = cfgmod.from_dict(  # type: ignore[attr-defined]
        DataConfig, {**cls.data_defaults, "direction": direction}, source="gankit import")
    fresh = [k for k in OFFICIAL_NAMES[model] if k not in states]
    source = {"official": "junyanz/pytorch-CycleGAN-and-pix2pix",
              "files": {k: str(v) for k, v in files.items()}}
    if fresh:
        source["initialised"] = fresh
    written = save_release(net, out, source=source)
    log.info("imported %s (%s) into %s%s", ", ".join(files), _flags(
        {k: settings[k] for k in inferred}), written,
        f"; {', '.join(fresh)} freshly initialised" if fresh else "")
    return written
