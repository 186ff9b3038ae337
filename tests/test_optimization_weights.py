"""The solver's cost weights are read from the compiled Pyomo objective, not written again: they
match the objective's equation term by term, and a cost term the solver cannot price fails."""

from __future__ import annotations

import numpy as np
import pytest

from promotwin.optimization import build_sku_model, compile_sku_template
from promotwin.optimization.model import objective_weights
from promotwin.optimization.types import NetworkStructure
from promotwin.policies.optimizer import network_structure
from promotwin.testing.snapshots import tiny_snapshot


def _network() -> NetworkStructure:
    s = tiny_snapshot(n_stores=2, horizon=4, on_hand=[[3], [1], [0]], demand=2.0, lead_time=2.0)
    net, _ = network_structure(s, 4, 3, 2)
    return net


def _dense(cols: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n)
    out[cols[cols >= 0]] = 1.0
    return out


def test_weights_follow_the_objective_term_by_term() -> None:
    """The docstring's equation of define_objective, column family by column family."""
    net = _network()
    t = compile_sku_template(net, 0)
    n, D = t.n_cols, net.n_dcs
    assert t.col_expedite.max() >= 0 and t.col_move.max() >= 0  # every family is present
    np.testing.assert_array_equal(t.w_lost, -_dense(t.col_sales, n))
    np.testing.assert_array_equal(t.w_hold, _dense(t.col_inv[:D, 1:], n))  # not day 0
    np.testing.assert_array_equal(t.w_hold_store, _dense(t.col_inv[D:, 1:], n))
    np.testing.assert_array_equal(t.w_premium, _dense(t.col_expedite, n))
    np.testing.assert_array_equal(t.w_order, _dense(t.col_expedite, n) + _dense(t.col_order, n))
    lane = t.w_lane.toarray()
    for a in range(net.n_lanes):
        np.testing.assert_array_equal(lane[:, a], _dense(t.col_move[a], n))


def test_a_cost_term_the_solver_cannot_price_fails() -> None:
    net = _network()
    m = build_sku_model(net, 0)
    columns = [v for var in (m.inv, m.sales, m.order, m.expedite, m.move) for v in var.values()]
    col_of = {id(v): j for j, v in enumerate(columns)}
    lane_of_col = np.full(len(columns), -1, np.int64)
    for a, e in m.move:
        lane_of_col[col_of[id(m.move[a, e])]] = a
    objective_weights(m, col_of, lane_of_col)  # the model as written prices fine
    # a holding charge scaled by the lost-sale cost: no weight of the solver's formula carries it
    m.cost.expr = m.cost.expr + m.holding_cost * m.lost_sale_cost * m.inv[0, 1]
    with pytest.raises(RuntimeError, match="update objective_weights"):
        objective_weights(m, col_of, lane_of_col)
