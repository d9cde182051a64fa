"""``torch2ms convert-ckpt``: carry trained PyTorch weights over to the migrated MindSpore model.

Importing this package imports nothing heavy: torch and MindSpore are loaded inside the command.
"""

from .command import convert_ckpt

__all__ = ["convert_ckpt"]
