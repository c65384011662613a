"""Remote addresses as logs write them: an IP address, or a host name kept as given."""

from __future__ import annotations

import ipaddress
from typing import Final

#: Distinct addresses remembered before the memo starts over (bounds memory under attack).
MEMO_SIZE: Final = 65536


def split_address(text: str) -> tuple[str | None, str | None]:
    """``(ip, None)`` for an IP address, else ``(None, text)``; never resolves a name.

    IPv6 is compressed and an IPv4-mapped address (``::ffff:1.2.3.4``) is unmapped.
    Anything else, including dotted quads with leading zeros (``192.030.0.6``, which
    some resolvers read as octal), is a host name, kept exactly as written. An empty
    text or ``-`` gives ``(None, None)``.
    """
    if not text or text == "-":
        return None, None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None, text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped), None
    return str(ip), None


class AddressMemo:
    """Memoised :func:`split_address`: attack logs repeat the same few addresses.

    One instance belongs to one parser (no shared state); the memo is bounded and
    simply starts over when full.
    """

    __slots__ = ("memo",)

    def __init__(self) -> None:
        #: Read it directly on hot paths (``memo.get(text) or split(text)``).
        self.memo: dict[str, tuple[str | None, str | None]] = {}

    def split(self, text: str) -> tuple[str | None, str | None]:
        """Like :func:`split_address`, remembered."""
        found = self.memo.get(text)
        if found is None:
            if len(self.memo) >= MEMO_SIZE:
                self.memo.clear()
            found = self.memo[text] = split_address(text)
        return found


__all__ = ["MEMO_SIZE", "AddressMemo", "split_address"]
