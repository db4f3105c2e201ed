"""The loaded product: recognizer, dialog and voice, loaded once per process and shared by calls."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Optional

from ivr.asr.models import load_recognizer
from ivr.audio.endpointer import Timing
from ivr.audio.recording import Recording
from ivr.call import Backstage, Call
from ivr.config import Settings
from ivr.dialog import frustration
from ivr.dialog.agent import Dialog
from ivr.dialog.settings import VoiceSettings, load_voice_settings
from ivr.masking import Seal
from ivr.queue import QueueError, open_queue
from ivr.queue.leases import LeaseKeeper, this_process
from ivr.queue.routing import CareRules
from ivr.queue.notices import QueueNotices
from ivr.records import RecordsError, open_records
from ivr.transports.base import Transport
from ivr.transports.typed import NoVoice
from ivr.tts.cache import PromptCache
from ivr.tts.pyttsx3_voice import Pyttsx3Synthesizer

log = logging.getLogger(__name__)
IN_CALL_WAIT_S = 3.0


@dataclass
class Bot:
    settings: Settings
    voice_settings: VoiceSettings
    recognizer: object
    dialog: Dialog
    voice: PromptCache | NoVoice
    ready_seconds: float
    backstage: Backstage = Backstage()
    leases: Optional[LeaseKeeper] = None  # keeps this process's callers on hold in line while it lives
    notices: Optional[QueueNotices] = None  # one listener per process: a caller it holds is taken, from any console
    ready_parts: dict[str, float] = field(default_factory=dict)  # seconds each part took to load, side by side

    @classmethod
    async def load(cls, settings: Settings, speech: bool = True) -> "Bot":
        """`speech=False`: a bot for typed callers (`ivr chat`), with no recognizer or voice to load."""
        began, parts = time.monotonic(), {}
        voice_settings = load_voice_settings(settings.dialogs_dir)
        loop = asyncio.get_running_loop()
        # All at once: the recognizer's and the voice's native code and the stores' waits run beside
        # Rasa's imports (the longest part, holding the GIL); each part's time is kept for the bench.
        loading = [_timed(parts, "dialog", Dialog.load(settings.dialogs_dir, settings.models_dir, voice_settings,
                                                      settings.var_dir)),
                   _timed(parts, "recognizer", loop.run_in_executor(None, lambda: load_recognizer(
                       settings.vosk_model, settings.whisper_model, settings.models_dir, log) if speech else None)),
                   _timed(parts, "voice", loop.run_in_executor(None, cls._voice, voice_settings)
                          if speech else asyncio.sleep(0, NoVoice())),
                   _timed(parts, "queue and records", asyncio.gather(
                       loop.run_in_executor(None, _open, partial(_queue_for_calls, voice=voice_settings), settings,
                                           "the agents' queue"),
                       loop.run_in_executor(None, _open, open_records, settings, "call records"))),
                   # the frustration meter's word lists, read here rather than at a first caller's turn on the loop
                   _timed(parts, "mood words", loop.run_in_executor(None, frustration.warm_up))]
        dialog, recognizer, voice, (queue, records), _ = await _all_or_none(loading)
        bot = cls(settings, voice_settings, recognizer, dialog, voice, 0.0)
        bot.backstage = Backstage(queue=queue, records=records, hold=voice_settings.hold,
                                  frustration=voice_settings.frustration, junk=voice_settings.junk,
                                  survey=voice_settings.survey)
        if queue is not None:
            bot.leases = await LeaseKeeper(queue).start()
            bot.notices = await QueueNotices(queue).start()
        bot.ready_seconds = time.monotonic() - began
        bot.ready_parts = {**parts, **{f"dialog: {part}": took for part, took in dialog.loaded_in.items()}}
        log.info("ready in %.1f s (%s)", bot.ready_seconds, ", ".join(f"{k} {v:.1f} s" for k, v in parts.items()))
        return bot

    @staticmethod
    def _voice(voice_settings: VoiceSettings) -> PromptCache:
        return PromptCache(Pyttsx3Synthesizer(voice_settings.tts_voice, voice_settings.tts_rate))

    @property
    def timing(self) -> Timing:
        e = self.voice_settings.endpointing
        return Timing(trailing_silence_ms=e.trailing_silence_ms, no_input_ms=e.no_input_ms,
                      max_utterance_ms=e.max_utterance_ms, answered_ms=e.answered_ms,
                      answered_free_confidence=e.answered_free_confidence,
                      answered_free_intents=e.answered_free_intents)

    def call(self, transport: Transport, channel: str, recording: Optional[Recording] = None,
             scripted: Optional[list[str]] = None, caller_number: Optional[str] = None) -> Call:
        return Call(transport, self.recognizer, self.dialog, self.voice, self.timing, Seal(self.settings.var_dir),
                    recording=recording, scripted=scripted, channel=channel, caller_number=caller_number,
                    backstage=self.backstage)

    async def close(self) -> None:
        if self.leases:
            await self.leases.stop()
        if self.notices:
            await self.notices.stop()
        await self.dialog.close()
        if isinstance(self.voice, PromptCache):
            await asyncio.get_running_loop().run_in_executor(None, self.voice.synth.close)
        for store in (self.backstage.queue, self.backstage.records):
            if store is not None:
                store.close()


async def _timed(parts: dict[str, float], name: str, loading):
    began = time.monotonic()
    loaded = await loading
    parts[name] = time.monotonic() - began
    return loaded


async def _all_or_none(loading: list) -> list:
    """Every part loaded, or the first failure raised with the dialog and stores that did load closed."""
    loaded = await asyncio.gather(*loading, return_exceptions=True)
    failure = next((part for part in loaded if isinstance(part, BaseException)), None)
    if failure is None:
        return loaded
    dialog, _, _, stores, _ = loaded
    if isinstance(dialog, Dialog):
        await dialog.close()
    for store in stores if isinstance(stores, list) else ():
        if store is not None:
            store.close()
    raise failure


def _queue_for_calls(settings: Settings, voice: VoiceSettings):
    """Calls wait at most IN_CALL_WAIT_S for a busy queue database: then the caller is told, not left in silence.
    The callers this process queues hold a lease it renews (ivr.queue.leases). Upset in the queue is upset in
    the dialog: the voice settings already read give the threshold, rather than reading voice.yml again."""
    care = CareRules.from_env(upset_at=voice.frustration.threshold)
    return open_queue(settings, wait_s=IN_CALL_WAIT_S, holder=this_process(), care=care)


def _open(opener, settings: Settings, what: str):
    """The agents' queue or the call records; when their database is down, calls go on without them."""
    try:
        return opener(settings)
    except (QueueError, RecordsError) as error:
        log.error("%s unavailable (%s): until it is back, escalated callers are told no agent can take them "
                  "and calls are not recorded", what, error)
        return None
