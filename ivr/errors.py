"""Errors every layer may raise and only the `ivr` command interprets.

Here rather than in ivr/cli.py so that a store's or a tool's command can say "the user can fix
this" without importing the command line (imports point down: the CLI imports the areas)."""
from __future__ import annotations


class UserError(Exception):
    """Something the person running `ivr` can fix; printed as one line, exit status 2."""
