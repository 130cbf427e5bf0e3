"""RFC 6455 / RFC 7692 conformance checks that turn frames into ``Violation``s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Violation"]


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: ``rule`` is a stable id (``unmasked-client-frame``), ``section`` the RFC
    section (``RFC 6455 §5.1``), ``side`` who is at fault (``client`` or ``server``), ``message`` a
    human sentence, ``close_code`` what a strict peer would close with (1002, 1007, 1009)."""

    rule: str
    section: str
    side: str
    message: str
    close_code: int = 1002

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "section": self.section,
            "side": self.side,
            "message": self.message,
            "close_code": self.close_code,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Violation:
        return cls(d["rule"], d["section"], d["side"], d["message"], d.get("close_code", 1002))
