"""Tensor methods: ``x.size(0)``, ``x.view(...)``, ``x.transpose(1, 2)``... called on values known
to be tensors (facts/inference.py), converted by the method rules (rules/tensor.toml) through the
machinery of function calls (constructions.py): arguments mapped, the method renamed, or the call
replaced by the rule's template. A torch-only method is an error (the rule says which finding); a
method on a value of unknown type is left alone."""

from __future__ import annotations

from ..migration import Migration
from .constructions import convert_call


def plan_tensors(mig: Migration) -> None:
    for call, rule, receiver, _scope in mig.types.tensor_method_calls():
        if id(call) not in mig.handled:
            convert_call(mig, call, rule, requires=receiver.origin)
