"""A DNS server for tests: UDP on 127.0.0.1, answering from a fixed table (dnspython builds
and parses the packets). Names it does not hold are NXDOMAIN."""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


def txt_value(text: str) -> str:
    """A TXT record in zone-file form: quoted, split into the 255-byte strings DNS allows."""
    chunks = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join(f'"{chunk}"' for chunk in chunks)


class FixedDnsServer:
    """records: {(name, type): [value in zone-file form, ...]}, names without the final dot."""

    def __init__(self, records: dict[tuple[str, str], list[str]], refuse: bool = False) -> None:
        self.refuse = refuse  # a resolver that answers REFUSED to everything: no DNS
        self.records = {
            (name.lower().rstrip("."), kind): values for (name, kind), values in records.items()
        }
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.questions: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> FixedDnsServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            self.sock.sendto(self._answer(dns.message.from_wire(data)).to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if self.refuse:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        for question in query.question:
            name = question.name.to_text(omit_final_dot=True).lower()
            kind = dns.rdatatype.to_text(question.rdtype)
            self.questions.append((name, kind))
            values = self.records.get((name, kind))
            if values:
                response.answer.append(
                    dns.rrset.from_text_list(question.name, 300, "IN", kind, values)
                )
            elif not any(held == name for held, _ in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
        return response
