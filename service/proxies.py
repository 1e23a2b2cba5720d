"""X-Forwarded-* headers, believed only when the request came from a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxyFix:
    """Werkzeug's ProxyFix, applied only when the direct peer is one of `networks`: a client
    that reaches the app without the proxy cannot choose its own address or host."""

    def __init__(self, app: WSGIApplication, hops: int, networks: Iterable[Network]) -> None:
        self.app = app
        self.fixed = ProxyFix(app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
        self.networks = tuple(networks)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if peer_in(environ.get("REMOTE_ADDR"), self.networks):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)


def peer_in(address: str | None, networks: Iterable[Network]) -> bool:
    try:
        peer = ipaddress.ip_address(address or "")
    except ValueError:
        return False  # a Unix socket or no address: nothing says it is the proxy
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped:
        peer = peer.ipv4_mapped  # a dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d
    return any(peer in network for network in networks)
