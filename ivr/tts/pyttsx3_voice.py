"""The bot's voice: pyttsx3 with espeak-ng, owned by one thread.

pyttsx3's engine is not safe to share across threads and runAndWait blocks, so one dedicated
thread creates the engine and does every render; callers hand it text and wait on a future.
"""
from __future__ import annotations

import logging
import queue
import sys
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Optional

from ivr.audio.pcm import BadAudio, read_wav
from ivr.events import AudioChunk
from ivr.tts.base import SynthesisError

log = logging.getLogger(__name__)
RENDER_LIMIT_SECONDS = 30.0  # a long reply renders in well under a second; this is only a stuck engine


def _quiet(*args, **kwargs) -> None:
    log.debug("pyttsx3: %s", " ".join(map(str, args)))


class Pyttsx3Synthesizer:
    def __init__(self, voice: str = "en-us", rate: int = 165):
        self.voice, self.rate = voice, rate
        self._jobs: "queue.Queue[Optional[tuple[str, Future]]]" = queue.Queue()
        self._scratch = tempfile.TemporaryDirectory(prefix="ivr-tts-")  # removed at close or process exit
        self._folder = Path(self._scratch.name)
        ready: Future = Future()
        self._thread = threading.Thread(target=self._own_engine, args=(ready,), name="pyttsx3", daemon=True)
        self._thread.start()
        ready.result()  # engine problems surface here, in the caller's thread

    def render(self, text: str) -> AudioChunk:
        done: Future = Future()
        self._jobs.put((text, done))
        return done.result()

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=5)
        self._scratch.cleanup()

    def _own_engine(self, ready: Future) -> None:
        try:
            engine = self._engine()
        except Exception as exc:  # noqa: BLE001 - handed to the thread that asked
            ready.set_exception(exc)
            return
        # pyttsx3 2.99's espeak driver can return from runAndWait as soon as synthesis starts (its
        # endLoop runs first when the queue is pumped), and writes the file later from espeak's own
        # thread; under load the file was not there yet. The driver says when it has written it.
        written = threading.Event()
        engine.connect("finished-utterance", lambda name, completed: completed and written.set())
        ready.set_result(None)
        count = 0
        while (job := self._jobs.get()) is not None:
            text, done = job
            count += 1
            path = self._folder / f"prompt-{count}.wav"
            written.clear()
            try:
                engine.save_to_file(text, str(path))
                engine.runAndWait()
                if not written.wait(RENDER_LIMIT_SECONDS):
                    raise RuntimeError(f"espeak-ng wrote nothing in {RENDER_LIMIT_SECONDS} s")
                done.set_result(read_wav(path))
            except (BadAudio, RuntimeError, OSError) as exc:
                done.set_exception(SynthesisError(f"pyttsx3 could not render {text[:40]!r}: {exc}"))
            finally:
                path.unlink(missing_ok=True)

    def _engine(self):
        import pyttsx3
        try:
            engine = pyttsx3.init("espeak")
            # The driver prints "Audio saved to …" on stdout, which would corrupt `ivr … --json`.
            sys.modules[type(engine.proxy._driver).__module__].print = _quiet
        except (OSError, RuntimeError) as exc:
            raise SynthesisError(f"pyttsx3 cannot load espeak-ng ({exc}); install it: apt-get install espeak-ng") from exc
        try:
            engine.setProperty("voice", self.voice)
        except (ValueError, KeyError) as exc:
            raise SynthesisError(f"unknown TTS voice {self.voice!r} (see `espeak-ng --voices`)") from exc
        engine.setProperty("rate", self.rate)
        return engine
