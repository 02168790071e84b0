"""Every action the gateway writes to the audit trail has words in both languages of the web
UI's audit log, which otherwise shows the raw code (``payments.refund`` in the Chinese page)."""

import re
from pathlib import Path

import pytest

from gateway import routes  # noqa: F401 - routes register the operations
from gateway.operations import registry

LOCALES = Path(__file__).resolve().parents[1] / "ui" / "src" / "i18n" / "locales"


def _audit_block(locale: str, name: str) -> str:
    """The ``audit: { … <name>: { … } }`` object of a locale file, as text."""
    text = (LOCALES / f"{locale}.js").read_text(encoding="utf-8")
    audit = text[text.index("\n  audit: {") :]
    start = audit.index(f"\n    {name}: {{")
    return audit[start : audit.index("\n    },", start)]


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_every_audited_action_has_a_label(locale):
    codes = {op.audit for op in registry.operations.values() if op.audit}
    assert codes, "no audited operation found"
    labels = _audit_block(locale, "actions")
    missing = [c for c in sorted(codes) if not re.search(rf"\b{c.replace('.', '_')}:", labels)]
    assert not missing, f"{locale}: no audit label for {missing}"
