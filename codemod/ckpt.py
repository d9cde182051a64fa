"""``torch2ms convert-ckpt``: carry trained PyTorch weights over to the migrated MindSpore model."""

from __future__ import annotations

import click


@click.command("convert-ckpt")
def convert_ckpt():
    """Convert a PyTorch checkpoint (not implemented yet)."""
    raise click.ClickException("convert-ckpt is not implemented yet")
