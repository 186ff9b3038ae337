"""Explicit, persisted mapping between ERP ids and twin ids.

Kinds: ``location``, ``product``, ``supplier``. The first run against an ERP initialises the
mapping from the ERP's codes (twin id = code) and the run store persists it; later runs only
translate. An ERP item missing from a non-empty mapping is *reported* (the run becomes partial,
the item is left out of the snapshot) unless new items are explicitly allowed (``add_new``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

KINDS = ("location", "product", "supplier")
TABLE_OF = {"location": "locations", "product": "products", "supplier": "suppliers"}


@dataclass
class IdMapping:
    """``entries[kind][erp_id] = twin_id``, with ``codes[kind][erp_id]`` kept for display."""

    entries: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    codes: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    added: list[tuple[str, str, str]] = field(default_factory=list)  # new (kind, erp_id, twin)

    def twin_id(self, kind: str, erp_id: str) -> str | None:
        return self.entries[kind].get(erp_id)

    def reverse(self, kind: str) -> dict[str, str]:
        return {t: e for e, t in self.entries[kind].items()}

    def __len__(self) -> int:
        return sum(len(v) for v in self.entries.values())

    def add(self, kind: str, erp_id: str, code: str) -> str:
        """Map a new ERP item to its code (or ``code~erp_id`` if the code is taken)."""
        taken = set(self.entries[kind].values())
        twin = code or erp_id
        if twin in taken:
            twin = f"{twin}~{erp_id}"
        self.entries[kind][erp_id] = twin
        self.codes[kind][erp_id] = code
        self.added.append((kind, erp_id, twin))
        return twin

    def resolve(self, tables: dict[str, pd.DataFrame], add_new: bool = False) -> list[str]:
        """Map the ERP's items; return the issues (unknown items) found.

        A kind with no entries yet is initialised from the ERP (first run); otherwise items not
        in the mapping are added only when ``add_new`` is set, and reported either way.
        """
        issues: list[str] = []
        for kind in KINDS:
            frame = tables[TABLE_OF[kind]]
            first = not self.entries[kind]
            unknown = []
            for erp_id, code in zip(frame["erp_id"], frame["code"], strict=True):
                if erp_id in self.entries[kind]:
                    self.codes[kind][erp_id] = code
                elif first or add_new:
                    twin = self.add(kind, erp_id, code)
                    if not first:
                        issues.append(f"new {kind} {code!r} (ERP id {erp_id}) mapped to {twin!r}")
                else:
                    unknown.append(f"{code!r} (ERP id {erp_id})")
            if unknown:
                shown = ", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else "")
                issues.append(
                    f"{len(unknown)} unknown {kind}(s) left out: {shown}; add them to the id "
                    "mapping (twin shadow map --add-new) or import a mapping CSV"
                )
        return issues

    def to_frame(self) -> pd.DataFrame:
        rows = [
            {"kind": k, "erp_id": e, "code": self.codes[k].get(e, ""), "twin_id": t}
            for k in KINDS
            for e, t in self.entries[k].items()
        ]
        return pd.DataFrame(rows, columns=["kind", "erp_id", "code", "twin_id"])

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> IdMapping:
        m = cls()
        for kind_value, twin_value, erp_value, code in zip(
            frame["kind"], frame["twin_id"], frame["erp_id"], frame["code"], strict=True
        ):
            kind = str(kind_value)
            if kind not in KINDS:
                raise ValueError(f"mapping row with kind {kind!r}: use one of {KINDS}")
            twin = str(twin_value)
            if twin in m.entries[kind].values():
                raise ValueError(f"mapping: twin id {twin!r} used twice for {kind}s")
            m.entries[kind][str(erp_value)] = twin
            m.codes[kind][str(erp_value)] = "" if pd.isna(code) else str(code)
        return m
