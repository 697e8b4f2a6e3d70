"""Named recipes: small JSON files of option overrides, such as the paper's facades settings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from gankit.errors import ConfigError


@dataclass(frozen=True)
class Recipe:
    name: str
    model: str
    description: str
    options: dict[str, Any]


def list_recipes() -> list[Recipe]:
    folder = resources.files(__package__)
    return sorted(
        (_read(entry.name[:-5], entry.read_text()) for entry in folder.iterdir()
         if entry.name.endswith(".json")),
        key=lambda r: r.name,
    )


def get_recipe(name: str) -> Recipe:
    for recipe in list_recipes():
        if recipe.name == name:
            return recipe
    known = ", ".join(r.name for r in list_recipes())
    raise ConfigError(f"unknown recipe {name!r}; available recipes: {known}")


def _read(name: str, text: str) -> Recipe:
    data = json.loads(text)
    return Recipe(name, data["model"], data.get("description", ""), data.get("options", {}))
