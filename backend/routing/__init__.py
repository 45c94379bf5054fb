"""Storeline's routing domain: pure Python + numpy (+ highspy for the batch). No web or database imports.

* :mod:`backend.routing.cost` - published weights (:class:`Weights`), inputs (:class:`Network`, stock mapping,
  :class:`OrderRequest`), the cost model (:class:`CostModel`) and :func:`evaluate_plan`.
* :mod:`backend.routing.realtime` - :func:`route_order` -> :class:`Decision` (one order, in microseconds to ms).
* :mod:`backend.routing.optimiser` - :func:`optimise_batch` -> :class:`BatchResult` (many open orders, one MIP).
* :mod:`backend.routing.explain` - plain-English and JSON explanations.
* :mod:`backend.routing.scenario`, :mod:`backend.routing.bench` - seeded US scenarios and the routing benchmark.
"""
from backend.routing.cost import (
    CostModel,
    Network,
    OrderLine,
    OrderRequest,
    PlanEval,
    Weights,
    evaluate_plan,
    same_day_open_now,
    stock_from_rows,
)
from backend.routing.explain import explain_batch_change, explain_decision
from backend.routing.optimiser import BatchReason, BatchResult, optimise_batch
from backend.routing.realtime import Candidate, Decision, route_order

__all__ = [
    "BatchReason", "BatchResult", "Candidate", "CostModel", "Decision", "Network", "OrderLine", "OrderRequest",
    "PlanEval", "Weights", "evaluate_plan", "explain_batch_change", "explain_decision", "optimise_batch",
    "route_order", "same_day_open_now", "stock_from_rows",
]
