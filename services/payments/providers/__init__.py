"""Payment provider adapters, one module each; every module that defines ``PROVIDER_CLASS`` is
registered here under its ``name``."""

from __future__ import annotations

import importlib
import pkgutil

from services.payments.config import PaymentsConfig
from services.payments.providers.base import Provider

_CLASSES: dict[str, type] = {}

for _module in pkgutil.iter_modules(__path__):
    if _module.name == "base":
        continue
    _cls = getattr(importlib.import_module(f"{__name__}.{_module.name}"), "PROVIDER_CLASS", None)
    if _cls is not None:
        _CLASSES[_cls.name] = _cls


def provider_names() -> list[str]:
    return sorted(_CLASSES)


def build_providers(config: PaymentsConfig) -> dict[str, Provider]:
    return {name: cls(config) for name, cls in _CLASSES.items()}


def provider_for(providers: dict[str, Provider], method: str, recorded: bool) -> Provider | None:
    """The provider that takes ``method`` (customer payments) or records it (staff)."""
    for name in sorted(providers):
        provider = providers[name]
        methods = provider.recorded_methods if recorded else provider.methods
        if method in methods:
            return provider
    return None
