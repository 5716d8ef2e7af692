"""Accept header parsing shared by discovery (aggregated v2) and Table negotiation.

The real server (apimachinery ``runtime/serializer`` + ``endpoints/handlers/negotiation``)
walks the client's media ranges by preference and serves the first one it supports. Clients
list their preferences in order (kubectl: Table v1, Table v1beta1, then plain JSON), with
``q`` weights honoured when present.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One entry of an Accept header: ``type/subtype`` plus its lower-cased parameters."""

    mime: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def quality(self) -> float:
        try:
            return float(self.params.get("q", "1"))
        except ValueError:
            return 1.0

    @property
    def is_plain_json(self) -> bool:
        """Plain JSON of the resource itself: ``application/json`` (or a wildcard), no ``as=``."""
        return self.mime in ("application/json", "application/*", "*/*") and "as" not in self.params

    def names(self, group: str, version: str, kind: str) -> bool:
        """True when the range asks for the given ``g``/``v``/``as`` (group/version/kind)."""
        return (
            self.params.get("g") == group
            and self.params.get("v") == version
            and self.params.get("as") == kind
        )


def parse_accept(accept: str | None) -> list[MediaRange]:
    """Media ranges by preference: descending ``q``, header order among equals; q=0 dropped."""
    ranges: list[MediaRange] = []
    for part in (accept or "").split(","):
        pieces = [p.strip() for p in part.split(";")]
        if not pieces[0]:
            continue
        params: dict[str, str] = {}
        for piece in pieces[1:]:
            key, sep, value = piece.partition("=")
            if sep:
                params[key.strip().lower()] = value.strip().strip('"')
        ranges.append(MediaRange(pieces[0].lower(), params))
    kept = [r for r in ranges if r.quality > 0]
    return sorted(kept, key=lambda r: -r.quality)  # sorted() is stable: header order kept
