"""What every transformer of the plan shares: the changes it is given, found by key."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import libcst as cst

from ..plan import Change
from .locate import Locator


class PlannedTransformer(cst.CSTTransformer):
    """A transformer with one job: the changes of the plan of the types it handles. The traversal
    (transform/__init__.py) keys the nodes; ``changes(node)`` are those planned for an original node."""

    handles: tuple[type[Change], ...] = ()

    def __init__(self, changes: Iterable[Change], locator: Locator):
        super().__init__()
        self.locator = locator
        self.planned: dict = defaultdict(list)
        for change in changes:
            self.planned[change.key].append(change)

    @classmethod
    def leaves(cls) -> set[type]:
        """The node types this transformer has a ``leave_`` method for (CSTTransformer has a
        do-nothing one for every type: only those defined here count)."""
        types = set()
        for klass in cls.__mro__:
            if klass is PlannedTransformer:
                break
            for name in vars(klass):
                node_type = getattr(cst, name[len("leave_"):], None) if name.startswith("leave_") else None
                if isinstance(node_type, type) and issubclass(node_type, cst.CSTNode):
                    types.add(node_type)
        return types

    def changes(self, original: cst.CSTNode) -> list[Change]:
        key = self.locator.key(original)
        return self.planned.get(key, []) if key is not None else []
