"""Model registry: name -> model class, filled by the ``@register_model`` decorator."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from gankit.errors import ConfigError

if TYPE_CHECKING:
    from gankit.models.base import GANModel

_MODELS: dict[str, type[GANModel]] = {}
M = TypeVar("M", bound="type[GANModel]")


def register_model(cls: M) -> M:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    name = cls.name
    if name in _MODELS and _MODELS[name] is not cls:
        raise ValueError(f"model name {name!r} is registered twice")
    _MODELS[name] = cls
    return cls


def _ensure_loaded() -> None:
    import gankit.models  # noqa: F401  (importing the package registers every model)


def list_models() -> list[str]:
    _ensure_loaded()
    return sorted(_MODELS)


def get_model_class(name: str) -> type[GANModel]:
    _ensure_loaded()
    try:
        return _MODELS[name]
    except KeyError:
        known = ", ".join(sorted(_MODELS))
        raise ConfigError(f"unknown model {name!r}; available models: {known}") from None
