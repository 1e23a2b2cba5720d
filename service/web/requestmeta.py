"""Who is asking: the request facts the consent ledger keeps."""

from flask import request

from ..people.consent import RequestMeta


def request_meta(source: str, page_url: str | None = None) -> RequestMeta:
    return RequestMeta(
        source=source,
        ip=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
        page_url=page_url or request.headers.get("Referer"),
    )
