"""A gateway on a free port, with whichever services a test asks for."""

import socket

import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def gateway_config(nameko_config):
    """``(config, base_url)`` for a gateway listening on a port of its own."""
    port = _free_port()
    config = dict(nameko_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")
    return config, f"http://127.0.0.1:{port}"
