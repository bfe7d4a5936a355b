"""Hosts and URLs of camera nodes: what people type, and what goes into URLs and Host."""

from __future__ import annotations

import pytest

from mmrec.wire.http1 import build_request
from mmrec.wire.url import (
    host_header,
    http_url,
    parse_host,
    parse_stream_url,
    short_name,
    url_host,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100.101.102.103", ("100.101.102.103", 8081)),
        ("100.101.102.103:9000", ("100.101.102.103", 9000)),
        ("phone.local", ("phone.local", 8081)),
        ("phone.tailnet.ts.net:8081", ("phone.tailnet.ts.net", 8081)),
        ("[fd00::5]:8082", ("fd00::5", 8082)),
        ("fd00::5", ("fd00::5", 8081)),
        (" 127.0.2.1 ", ("127.0.2.1", 8081)),
        ("[fe80::1%eth0]:8081", ("fe80::1%eth0", 8081)),
    ],
)
def test_parse_host(text: str, expected: tuple[str, int]) -> None:
    assert parse_host(text) == expected


@pytest.mark.parametrize("text", ["", "1.2.3.4:0", "1.2.3.4:99999", "h:x", "[fd00::5", "a/b"])
def test_parse_host_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_host(text)


@pytest.mark.parametrize(
    ("host", "in_url", "in_host_header"),
    [
        ("10.0.0.7", "10.0.0.7", "10.0.0.7:8081"),
        ("phone.local", "phone.local", "phone.local:8081"),
        ("fd00::5", "[fd00::5]", "[fd00::5]:8081"),
        # RFC 6874: the zone is escaped in a URL and never sent in Host
        ("fe80::1%eth0", "[fe80::1%25eth0]", "[fe80::1]:8081"),
    ],
)
def test_ipv6_hosts_in_urls_and_host_headers(host: str, in_url: str, in_host_header: str) -> None:
    assert url_host(host) == in_url
    assert http_url(host, 8081, "/stream") == f"http://{in_url}:8081/stream"
    assert host_header(host, 8081) == in_host_header
    assert f"\r\nHost: {in_host_header}\r\n".encode() in build_request(host, 8081, "/stream")
    assert host_header(host, 80) == in_host_header.rsplit(":", 1)[0]


@pytest.mark.parametrize(
    ("url", "host", "port", "path", "shown"),
    [
        ("192.168.43.21", "192.168.43.21", 8081, "/stream", "http://192.168.43.21:8081/stream"),
        ("http://h:9000/", "h", 9000, "/stream", "http://h:9000/stream"),
        ("http://h/my stream", "h", 8081, "/my%20stream", "http://h:8081/my%20stream"),
        ("http://[fd00::5]/s", "fd00::5", 8081, "/s", "http://[fd00::5]:8081/s"),
        (
            "http://[fe80::1%25eth0]:8081/stream",
            "fe80::1%eth0",
            8081,
            "/stream",
            "http://[fe80::1%25eth0]:8081/stream",  # the same URL back, zone still escaped
        ),
    ],
)
def test_stream_urls(url: str, host: str, port: int, path: str, shown: str) -> None:
    u = parse_stream_url(url)
    assert (u.host, u.port, u.path, u.url) == (host, port, path, shown)
    assert parse_stream_url(u.url) == u  # a URL we print can be pasted back


@pytest.mark.parametrize(
    "url", ["https://h/stream", "http://[::1/stream", "http://h:0/stream", "http:///stream"]
)
def test_bad_stream_urls(url: str) -> None:
    with pytest.raises(ValueError, match=r"URL|http://"):
        parse_stream_url(url)


def test_short_names() -> None:
    assert short_name("http://10.0.0.7:8081/stream") == "10.0.0.7"
    assert short_name("10.0.0.7:9000") == "10.0.0.7:9000"
    assert short_name("http://h:x/") == "http://h:x/"
