"""Where this install's key material lives: var/keys/, its owner's only, apart from the databases.

Kept beside the data, a key went wherever the data went (a copied var/, a backup of the databases,
a 0644 file anyone on the machine could read). In a folder of its own, mode 0700 with files 0600,
the databases can be shared or backed up without it. A key an older ivr kept directly in var/ is
moved in on first use with its value unchanged, so card tokens and sessions made under it still match.
"""
from __future__ import annotations

import os
from pathlib import Path

KEYS_DIR = "keys"


def keys_dir(var_dir: Path) -> Path:
    """var/keys/, made 0700 on first use; refused (never silently widened) when others may read it."""
    folder = Path(var_dir) / KEYS_DIR
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            pass  # another process made it first
        os.chmod(folder, 0o700)  # mkdir's mode passes through the umask: say it exactly
    mode = folder.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"{folder} must be its owner's only (chmod 700 {folder}); it is {mode:o}")
    return folder


def key_file(var_dir: Path, name: str) -> Path:
    """Where key `name` lives (var/keys/NAME); one left at var/NAME by an older ivr is moved there first."""
    path, old = keys_dir(var_dir) / name, Path(var_dir) / name
    if old.is_file() and not path.exists():
        os.chmod(old, 0o600)  # the same inode moves: it arrives private
        try:
            os.link(old, path)  # never replaces a key already in place (two processes moving at once)
        except FileExistsError:
            pass
        except FileNotFoundError:
            return path  # another process moved it meanwhile
        old.unlink(missing_ok=True)
    return path
