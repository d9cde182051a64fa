"""torch2ms: migrate PyTorch normalization layers to MindSpore.

The public API other tools build on::

    from codemod import migrate_source
    result = migrate_source(source, path="model.py")
    result.code, result.findings, result.changed
"""

from .engine import Planned, migrate_source, plan_source
from .findings import Finding
from .model import Config, MigrationError, MigrationResult, Site, SiteKind

__all__ = ["Config", "Finding", "MigrationError", "MigrationResult", "Planned", "Site", "SiteKind", "migrate_source",
           "plan_source"]
__version__ = "0.1.0"
