"""The address of the client behind a request, honouring only proxies we trust."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=16)
def _networks(trusted: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def _is_trusted(address: str, trusted: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(trusted))


def client_ip(remote_addr: str | None, forwarded_for: str | None, trusted: Iterable[str]) -> str:
    """``remote_addr``, unless it is a trusted proxy (``CMS_TRUSTED_PROXIES``, addresses or
    CIDR ranges): then the nearest address in ``X-Forwarded-For`` that is not one."""
    trusted = tuple(trusted)
    address = remote_addr or ""
    if not trusted or not forwarded_for or not _is_trusted(address, trusted):
        return address
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return address
    return hops[0] if hops else address
