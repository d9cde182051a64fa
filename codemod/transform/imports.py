"""Import statements that lose some of their names (torch names no longer used). Whole statements
swapped for their MindSpore counterparts, and new imports, are statements (statements.py).

LibCST's RemoveImportsVisitor/AddImportsVisitor are not used: the first needs the scope and
qualified-name metadata of the whole file (more than the whole migration costs), and the second puts
new imports after the module's last import, where the README promises them next to the torch import
they stand for."""

from __future__ import annotations

import libcst as cst

from ..plan import KeepImportNames
from .base import PlannedTransformer


class Imports(PlannedTransformer):
    handles = (KeepImportNames,)

    def _keep(self, original, updated):
        for change in self.changes(original):
            names = list(updated.names)
            kept = [name for name, keep in zip(names, change.keep) if keep]
            # The name that ends up last takes the statement's last comma (a trailing comma stays).
            kept[-1] = kept[-1].with_changes(comma=names[-1].comma)
            updated = updated.with_changes(names=kept)
        return updated

    def leave_Import(self, original: cst.Import, updated: cst.Import) -> cst.Import:
        return self._keep(original, updated)

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
        return self._keep(original, updated)
