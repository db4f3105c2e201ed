"""What the actions reach beyond the tracker: the accounts store, card tokens and the caller's seal.

Opened once per action-server process, on first use, from the same settings as the bot.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

from ivr.accounts import CardTokens, Store, card_tokens, open_store
from ivr.config import Settings
from ivr.masking import SEALED_ENTITY, SEALED_INTENT, Seal


@dataclass(frozen=True)
class Backing:
    store: Store
    cards: CardTokens
    seal: Seal

    def unsealed(self, text: object) -> Optional[str]:
        """What the caller said at a secret prompt, from the sealed message the call sent instead."""
        prefix = f"/{SEALED_INTENT}"
        if not isinstance(text, str) or not text.startswith(prefix):
            return None
        try:
            token = json.loads(text[len(prefix):]).get(SEALED_ENTITY)
        except (ValueError, AttributeError):
            return None
        return self.seal.open(token) if token else None


@lru_cache(maxsize=1)
def backing() -> Backing:
    settings = Settings.from_env()
    return Backing(open_store(settings), card_tokens(settings), Seal(settings.var_dir))
