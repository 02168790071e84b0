"""Fixtures of the gateway tests, for the reliability tests that run through the gateway."""

from gateway.tests.conftest import admin, api  # noqa: F401 - fixtures
