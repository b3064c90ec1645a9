"""Bias audit (`mentalens eval bias`): counterfactual posts that change only gender, a first name, a stated
age or the dialect, and how often that changes what a system concludes."""

from mentalens.evaluate.bias.audit import (
    FLIP_THRESHOLD,
    BiasConfig,
    BiasResult,
    Pair,
    audit_analyzer,
    audit_backend,
    audit_records,
    audit_risk,
    census,
)
from mentalens.evaluate.bias.counterfactuals import ATTRIBUTES, NAME_SOURCE, NAMES, Counterfactual, counterfactuals
from mentalens.evaluate.bias.report import write_bias_report

__all__ = [
    "ATTRIBUTES",
    "FLIP_THRESHOLD",
    "NAMES",
    "NAME_SOURCE",
    "BiasConfig",
    "BiasResult",
    "Counterfactual",
    "Pair",
    "audit_analyzer",
    "audit_backend",
    "audit_records",
    "audit_risk",
    "census",
    "counterfactuals",
    "write_bias_report",
]
