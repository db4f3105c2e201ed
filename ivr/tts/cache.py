"""Rendered prompts cached by (text, voice, rate); long replies rendered sentence by sentence."""
from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Iterable, Iterator

from ivr.events import AudioChunk
from ivr.tts.base import Synthesizer
from ivr.tts.reading import read_aloud

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class PromptCache:
    def __init__(self, synth: Synthesizer, capacity: int = 512):
        self.synth = synth
        self._capacity = capacity
        self._rendered: "OrderedDict[tuple[str, str, int], AudioChunk]" = OrderedDict()
        self._lock = threading.Lock()
        self.renders = 0  # how often the synthesizer actually ran

    def render(self, text: str) -> AudioChunk:
        key = (text, self.synth.voice, self.synth.rate)
        with self._lock:
            if key in self._rendered:
                self._rendered.move_to_end(key)
                return self._rendered[key]
        audio = self.synth.render(read_aloud(text))
        with self._lock:
            self.renders += 1
            self._rendered[key] = audio
            while len(self._rendered) > self._capacity:
                self._rendered.popitem(last=False)
        return audio

    def render_sentences(self, text: str) -> Iterator[AudioChunk]:
        """The first sentence is ready as soon as it is rendered, not after the whole reply."""
        for sentence in SENTENCE_END.split(text.strip()):
            if sentence:
                yield self.render(sentence)

    def warm(self, texts: Iterable[str]) -> None:
        for text in texts:
            for _ in self.render_sentences(text):
                pass
