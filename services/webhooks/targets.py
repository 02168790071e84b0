"""Where a webhook may be sent: public internet addresses only (no SSRF into our own network).

Checked twice. At registration (:func:`refusal`): the URL's form, credentials in it, and a host
that is an address (in any spelling ``inet_aton`` reads: ``127.1``, ``2130706433``) or
``localhost``. At delivery (:func:`guarded_connection`): the host's name is resolved, every
address it resolves to must be public, and the connection goes to one of exactly those
addresses, so a name that resolved to a public address at registration and to
169.254.169.254 now (DNS rebinding) is refused without a byte sent.

``ALLOW_HTTP_LOOPBACK`` (development and tests) allows the loopback (127.0.0.0/8, ::1,
``localhost``), over plain http as well as https; every other private address stays refused.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK_NAMES = ("localhost",)
#: IPv6 prefixes that carry an IPv4 address (NAT64): the embedded one must be public too.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeAddress(OSError):
    """The target resolves to an address a webhook may not reach; nothing was sent."""


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress, allow_loopback: bool) -> str | None:
    """Why ``address`` may not be a webhook's target, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_v4(address)
        if embedded is not None:
            return address_refusal(embedded, allow_loopback)
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_multicast:
        return "a multicast address"
    if not address.is_global:
        return "a private or reserved address"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells, if it spells one (also ``127.1``, ``0x7f.1``,
    ``2130706433``: what the resolver would read as an IPv4 address)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host.lower()) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_loopback_name(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host in LOOPBACK_NAMES or host.endswith(".localhost")


def refusal(url: str, allow_loopback: bool) -> str | None:
    """Why ``url`` may not be a webhook's target (a message for the ``url`` field), or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "Not a valid URL."
    if parts.scheme not in ("https", "http") or not host:
        return "Must be an https:// URL."
    if "@" in parts.netloc:
        return "Must not carry a user name or password: authenticate with the signature."
    address = literal_address(host)
    loopback = (address is not None and address.is_loopback) or is_loopback_name(host)
    if parts.scheme == "http" and not (loopback and allow_loopback):
        return "Must be an https:// URL."
    if address is not None:
        why = address_refusal(address, allow_loopback)
        if why:
            return f"Must be a public address: {host} is {why}."
    elif loopback and not allow_loopback:
        return f"Must be a public address: {host} is the loopback."
    return None


def mask(url: str) -> str:
    """``url`` without a password (endpoints registered before credentials were refused)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"***@{host}").geturl()


def guarded_connection(allow_loopback: bool):
    """A replacement for ``socket.create_connection`` (what ``http.client`` connects with)
    that resolves the host once, refuses when any of its addresses may not be reached, and
    connects to those same addresses (TLS still checks the certificate against the name)."""

    def create_connection(address, timeout=None, source_address=None, **_kwargs):
        host, port = address
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        for *_rest, sockaddr in infos:
            why = address_refusal(ipaddress.ip_address(sockaddr[0].split("%")[0]), allow_loopback)
            if why:
                raise UnsafeAddress(f"{host} resolves to {sockaddr[0]}, {why}: not sent")
        error: OSError | None = None
        for family, kind, proto, _name, sockaddr in infos:
            sock = socket.socket(family, kind, proto)
            try:
                if isinstance(timeout, int | float):
                    sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                error = exc
                sock.close()
        raise error or OSError(f"{host} has no address")

    return create_connection
