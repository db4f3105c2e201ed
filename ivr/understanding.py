"""What a caller turn says, as text for the dialog: speech transcribed and normalised for the question
asked ("four eight one five" -> "4815"), keys as digits, typed lines as a transcript, silence as
/no_input; secrets sealed before the dialog sees them and card numbers never kept."""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor

from ivr.asr.numbers import normalise
from ivr.caller_input import CallerTurn
from ivr.events import Expectation, Transcript, Turn
from ivr.masking import HIDDEN, Seal, mask_card_numbers

NO_INPUT = "/no_input"
NO_MATCH = "/nlu_fallback"


async def text_of(caller_turn: CallerTurn, turn: Turn, expects: Expectation, asr: Executor, began: float) -> str:
    """The caller's answer as text (NO_INPUT for silence); `turn` records what was heard and how long ASR took."""
    if caller_turn.kind == "speech":
        turn.latency["endpoint"] = caller_turn.ended.endpoint_at - caller_turn.ended.timestamp
        transcript = await asyncio.get_running_loop().run_in_executor(asr, caller_turn.utterance.finish)
        turn.latency["asr"] = time.monotonic() - began
        return understood(transcript, turn, expects)
    if caller_turn.kind == "typed":  # the same understanding as a transcript: number words, amounts
        return understood(Transcript(caller_turn.said, 1.0), turn, expects)
    if caller_turn.kind == "dtmf":
        turn.heard = caller_turn.digits
        return turn.heard
    return NO_INPUT


def understood(transcript: Transcript, turn: Turn, expects: Expectation) -> str:
    text = normalise(transcript.text, expects).strip()
    turn.heard, turn.confidence = text, transcript.confidence
    return text or NO_MATCH


def kept_secret(seal: Seal, text: str, turn: Turn, expects: Expectation, spoken: bool) -> str:
    """What the dialog may see of the answer: sealed at a secret prompt, card numbers masked anywhere."""
    text, hidden = seal.answer(text, expects, spoken)
    if hidden:
        turn.heard = turn.said = HIDDEN
        return text
    # A card number where none was asked for (keyed after a misheard "new card") is never kept.
    turn.heard, turn.said = mask_card_numbers(turn.heard), mask_card_numbers(turn.said)
    return mask_card_numbers(text)
