"""Location roles as data: which ERP warehouse is a DC, which a store, and who supplies it.

One row per ERP warehouse: ``erp_code, role (dc|store), serving_dc (code, empty if none),
supplied_by (dc|supplier|both)``. An adapter *proposes* a layout from the ERP's own structure
(``propose``), with a reason per warehouse; the run store keeps the layout a rollout team
confirmed (``twin shadow layout --import``), and every run applies it (``apply``).

A store supplied by a supplier only, or by both, is a direct-store-delivery store in the snapshot
(``PlanningSnapshot.direct``): the policies buy for it direct from the supplier (a ``both`` store
is shipped to by its DC too), so its purchase order points in the ERP compare with the policy's
direct purchases. In a layout without any DC, a store supplied by a supplier only is planned
like a DC. A warehouse with an empty role is ambiguous: left out, and reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

ROLES = ("dc", "store")
SUPPLIED_BY = ("dc", "supplier", "both")
COLUMNS = ["erp_code", "role", "serving_dc", "supplied_by"]


@dataclass(frozen=True)
class Facts:
    """What the ERP says about one warehouse, for proposing its role."""

    erp_id: str
    code: str
    provisioned_by: str  # erp_id of the warehouse whose stock provisions it ("" for none)
    provisions: tuple[str, ...]  # codes of the warehouses it provisions
    purchase_order_points: int  # order points of type purchase on it
    sells: bool  # customer moves or sale orders from it


def propose_one(f: Facts, code_of: dict[str, str]) -> dict[str, str]:
    """The role of one warehouse, with the reason (one row of the canonical locations table)."""
    ops = f"{f.purchase_order_points} purchase order point(s)"
    row = {"erp_id": f.erp_id, "code": f.code, "serving_dc": "", "supplied_by": "supplier"}
    if f.provisioned_by and f.provisioned_by != f.erp_id:
        both = f.purchase_order_points > 0
        dc = code_of.get(f.provisioned_by, f.provisioned_by)
        return row | {
            "kind": "store",
            "serving_dc": f.provisioned_by,
            "supplied_by": "both" if both else "dc",
            "reason": f"its storage is provisioned from {dc}"
            + (f" and it has {ops}" if both else ""),
        }
    if f.provisions:
        return row | {"kind": "dc", "reason": f"it provisions {', '.join(f.provisions)}"}
    if f.sells:
        return row | {
            "kind": "store",
            "reason": "it sells to customers and no warehouse provisions it"
            + (f"; it has {ops}" if f.purchase_order_points else ""),
        }
    if f.purchase_order_points:
        return row | {
            "kind": "dc",
            "reason": f"it has {ops}, no customer sales and provisions no warehouse",
        }
    return row | {
        "kind": "",
        "supplied_by": "",
        "reason": "ambiguous: it neither sells, buys (no purchase order points), provisions nor "
        "is provisioned; give it a role with `twin shadow layout --import`",
    }


def propose(facts: list[Facts]) -> pd.DataFrame:
    """The proposed layout as canonical ``locations`` rows (erp_id, code, kind, serving_dc,
    supplied_by, reason); ``kind`` is empty for an ambiguous warehouse."""
    code_of = {f.erp_id: f.code for f in facts}
    return pd.DataFrame([propose_one(f, code_of) for f in facts])


def to_layout(locations: pd.DataFrame) -> pd.DataFrame:
    """Canonical ``locations`` rows as a layout table (codes, not ERP ids), with reasons."""
    code_of = dict(zip(locations["erp_id"], locations["code"], strict=True))
    return pd.DataFrame(
        {
            "erp_code": locations["code"].to_numpy(object),
            "role": locations["kind"].to_numpy(object),
            "serving_dc": [code_of.get(d, d) if d else "" for d in locations["serving_dc"]],
            "supplied_by": locations["supplied_by"].to_numpy(object),
            "reason": locations["reason"].to_numpy(object),
        }
    )


def validate(frame: pd.DataFrame, where: str = "layout") -> pd.DataFrame:
    """A layout table checked row by row; ``ValueError`` lists every problem (CSV line numbers)."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; need {COLUMNS}")
    out = frame[COLUMNS].fillna("").astype(str).apply(lambda c: c.str.strip())
    out["reason"] = frame["reason"].fillna("").astype(str) if "reason" in frame else ""
    problems = []
    dcs = set(out.loc[out["role"] == "dc", "erp_code"])
    dupes = out["erp_code"][out["erp_code"].duplicated()]
    for code in dupes:
        problems.append(f"erp_code {code!r} appears more than once")
    for i, r in enumerate(out.itertuples(False), start=2):  # line 1 is the header
        at = f"line {i} ({r.erp_code or 'no code'})"
        if not r.erp_code:
            problems.append(f"{at}: erp_code is empty")
        if r.role not in ROLES:
            problems.append(f"{at}: role {r.role!r}: use one of {ROLES}")
        if r.supplied_by not in SUPPLIED_BY:
            problems.append(f"{at}: supplied_by {r.supplied_by!r}: use one of {SUPPLIED_BY}")
        if r.role == "dc" and (r.serving_dc or r.supplied_by in ("dc", "both")):
            problems.append(f"{at}: a DC is supplied by suppliers: leave serving_dc empty")
        if r.role == "store" and r.supplied_by in ("dc", "both") and r.serving_dc not in dcs:
            problems.append(
                f"{at}: supplied_by {r.supplied_by} needs serving_dc to name a DC of this "
                f"layout (got {r.serving_dc!r}; DCs: {sorted(dcs)})"
            )
        if r.role == "store" and r.supplied_by == "supplier" and r.serving_dc:
            problems.append(f"{at}: supplied_by supplier: leave serving_dc empty (or use both)")
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))
    return out.reset_index(drop=True)


def apply(locations: pd.DataFrame, layout: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The ERP's ``locations`` with the roles of ``layout`` (by code); the notes say which
    warehouses the layout does not know (they keep the proposed role) and which rows match no
    warehouse."""
    by_code = {r["erp_code"]: r for r in layout.to_dict("records")}
    id_of = dict(zip(locations["code"], locations["erp_id"], strict=True))
    rows, notes = [], []
    for r in locations.to_dict("records"):
        chosen = by_code.get(r["code"])
        if chosen is None:
            notes.append(
                f"warehouse {r['code']!r} is not in the layout: proposed role "
                f"{r['kind'] or 'none (ambiguous)'} ({r['reason']})"
            )
            rows.append(r)
            continue
        rows.append(
            r
            | {
                "kind": chosen["role"],
                "serving_dc": id_of.get(chosen["serving_dc"], "") if chosen["serving_dc"] else "",
                "supplied_by": chosen["supplied_by"],
                "reason": "the layout in the run store",
            }
        )
    unknown = sorted(set(by_code) - set(id_of))
    if unknown:
        notes.append(f"layout row(s) {unknown} match no ERP warehouse: ignored")
    return pd.DataFrame(rows, columns=locations.columns), notes


def rechannel(sales: pd.DataFrame, before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """``sales`` with the channels of re-roled warehouses following their new role: a
    warehouse made a DC sells online (its walk-in and pickup rows become ecommerce); a DC made a
    store sells over the counter (its ecommerce rows become walk-in). An adapter names a sale's
    channel from the role it proposed, so a kept layout that changes the role changes it too."""
    was = dict(zip(before["erp_id"], before["kind"], strict=True))
    now = dict(zip(after["erp_id"], after["kind"], strict=True))
    to_dc = [e for e, k in now.items() if k == "dc" and was.get(e) != "dc"]
    to_store = [e for e, k in now.items() if k == "store" and was.get(e) == "dc"]
    at_new_dc = sales["location"].isin(to_dc) & sales["channel"].isin(["walk_in", "pickup"])
    at_new_store = sales["location"].isin(to_store) & (sales["channel"] == "ecommerce")
    if not (at_new_dc.any() or at_new_store.any()):
        return sales
    return sales.assign(
        channel=sales["channel"].mask(at_new_dc, "ecommerce").mask(at_new_store, "walk_in")
    )
