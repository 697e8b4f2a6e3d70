"""Every module of this package is imported here, so that each model file's
``@register_model`` runs: a new model is one new file, with nothing to add elsewhere."""

import importlib
import pkgutil

MODULES = tuple(sorted(info.name for info in pkgutil.iter_modules(__path__)))

for _name in MODULES:
    importlib.import_module(f"{__name__}.{_name}")
