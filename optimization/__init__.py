"""The replenishment / allocation / transfer LP (Pyomo model, HiGHS solve); knows arrays only."""

from promotwin.optimization.model import SkuTemplate, build_sku_model, compile_sku_template
from promotwin.optimization.solver import ReplenishmentModel, SubProblem, make_sku_groups
from promotwin.optimization.types import (
    UNLIMITED,
    GroupResult,
    LaneKind,
    NetworkStructure,
    SolveResult,
    TerminationStatus,
    TickInputs,
)

__all__ = [
    "UNLIMITED",
    "GroupResult",
    "LaneKind",
    "NetworkStructure",
    "ReplenishmentModel",
    "SkuTemplate",
    "SolveResult",
    "SubProblem",
    "TerminationStatus",
    "TickInputs",
    "build_sku_model",
    "compile_sku_template",
    "make_sku_groups",
]
