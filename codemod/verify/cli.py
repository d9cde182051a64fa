"""``torch2ms verify``."""

from __future__ import annotations

import click


@click.command()
@click.argument("paths", nargs=-1, required=True)
def verify(paths):
    """Prove each migrated normalization layer numerically (not implemented yet)."""
    raise click.ClickException("verify is not implemented yet")
