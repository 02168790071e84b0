"""The run command's checks before it starts anything."""

import dataclasses

import pytest

from shared import cli
from shared.config import load_settings


def test_unreachable_backing_services_are_named_with_what_to_do(monkeypatch):
    monkeypatch.setattr(cli, "_docker_engine", lambda: False)
    current = dataclasses.replace(
        load_settings(),
        database_url="postgresql+psycopg2://postgres@127.0.0.1:1/cms",
        amqp_uri="pyamqp://guest:guest@127.0.0.1:2/",
    )
    with pytest.raises(SystemExit) as stopped:
        cli.ensure_backing_services(current)
    message = str(stopped.value)
    assert "PostgreSQL at 127.0.0.1:1 (CMS_DATABASE_URL)" in message
    assert "RabbitMQ at 127.0.0.1:2 (CMS_AMQP_URI)" in message
    assert "apt-get install postgresql" in message and "docker compose up" in message


def test_reachable_backing_services_pass(backing_services):
    admin_url, amqp_uri = backing_services
    current = dataclasses.replace(load_settings(), database_url=admin_url, amqp_uri=amqp_uri)
    cli.ensure_backing_services(current)
