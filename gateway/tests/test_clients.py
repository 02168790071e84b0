"""Client addresses behind proxies."""

from gateway.clients import client_ip


def test_forwarded_for_is_honoured_only_from_trusted_proxies():
    assert client_ip("203.0.113.9", "10.0.0.1", ()) == "203.0.113.9"
    assert client_ip("203.0.113.9", "10.0.0.1", ("127.0.0.1",)) == "203.0.113.9"
    assert client_ip("127.0.0.1", "198.51.100.7", ("127.0.0.1",)) == "198.51.100.7"
    chain = "1.2.3.4, 198.51.100.7, 10.1.2.3"
    assert client_ip("127.0.0.1", chain, ("127.0.0.0/8", "10.0.0.0/8")) == "198.51.100.7"
    assert client_ip("127.0.0.1", "not-an-ip", ("127.0.0.1",)) == "127.0.0.1"
    assert client_ip("127.0.0.1", None, ("127.0.0.1",)) == "127.0.0.1"
