"""Vosk: the primary, streaming recognizer. One shared Model per process, a KaldiRecognizer per utterance."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Optional

from ivr.asr.base import RecognitionError
from ivr.asr.hints import UNKNOWN, vosk_grammar
from ivr.audio.pcm import resample
from ivr.events import AudioChunk, Expectation, Transcript

PULL_HINT = "run `ivr models pull` (needs a network) or pass --vosk-model DIR"
PARTIAL_EVERY = 0.2  # seconds of audio between partial results: each one is a lattice traceback


def looks_like_model(folder: Path) -> bool:
    return (folder / "am").is_dir() or (folder / "conf" / "model.conf").is_file()


@lru_cache(maxsize=None)
def _shared_model(folder: Path):
    """Loaded once per process per folder (hundreds of MB); calls share it, read-only."""
    import vosk

    vosk.SetLogLevel(-1)
    try:
        return vosk.Model(str(folder))
    except Exception as exc:  # vosk raises a bare Exception when Kaldi refuses the files
        raise RecognitionError(f"{folder}: Vosk could not load this model ({exc}); {PULL_HINT}") from exc


class VoskRecognizer:
    def __init__(self, model_dir: Path):
        folder = Path(model_dir).expanduser().resolve()
        if not folder.is_dir():
            raise RecognitionError(f"Vosk model folder {folder} does not exist; {PULL_HINT}")
        if not looks_like_model(folder):
            raise RecognitionError(f"{folder}: not a Vosk model folder (no am/ or conf/model.conf); {PULL_HINT}")
        self._model = _shared_model(folder)
        self.name = f"vosk ({folder.name})"
        self.folder = folder

    def knows(self, word: str) -> bool:
        return self._model.vosk_model_find_word(word) >= 0

    def utterance(self, rate: int, expects: Expectation) -> "VoskUtterance":
        return self.restricted(rate, vosk_grammar(expects))

    def restricted(self, rate: int, grammar: Optional[list[str]]) -> "VoskUtterance":
        """An utterance limited to the grammar's words that the model knows; open vocabulary when None,
        when the model knows none of them (another language) or cannot take a grammar (big static graphs)."""
        import vosk

        phrases = None
        if grammar is not None and self._takes_grammar():
            known = [" ".join(w for w in phrase.split() if self.knows(w)) for phrase in grammar]
            phrases = [p for p in known if p] if any(p and p != UNKNOWN for p in known) else None
        if phrases:
            recognizer = vosk.KaldiRecognizer(self._model, float(rate), json.dumps(phrases, ensure_ascii=False))
        else:
            recognizer = vosk.KaldiRecognizer(self._model, float(rate))
        recognizer.SetWords(True)
        return VoskUtterance(recognizer, rate, restricted=bool(phrases))

    def _takes_grammar(self) -> bool:
        # Only lookahead models (graph/HCLr.fst + Gr.fst, the small ones) can swap their grammar at run time.
        return (self.folder / "graph" / "HCLr.fst").is_file() or (self.folder / "HCLr.fst").is_file()


class VoskUtterance:
    def __init__(self, recognizer, rate: int, restricted: bool = False):
        self._recognizer, self._rate, self.restricted = recognizer, rate, restricted
        self._finals: list[dict] = []
        self._partial = ""
        self._since_partial = 0.0

    def feed(self, chunk: AudioChunk) -> Optional[Transcript]:
        if chunk.rate != self._rate:
            chunk = resample(chunk, self._rate)
        if not chunk.pcm:
            return None
        if self._recognizer.AcceptWaveform(chunk.pcm):
            self._finals.append(json.loads(self._recognizer.Result()))
            self._since_partial = 0.0
            return self._changed(self._so_far(""))
        self._since_partial += chunk.seconds
        if self._since_partial < PARTIAL_EVERY:
            return None
        self._since_partial = 0.0
        return self._changed(self._so_far(json.loads(self._recognizer.PartialResult()).get("partial", "")))

    def speculate(self) -> None:
        """Vosk decodes as audio arrives; nothing to start early."""

    def guess(self):
        """Vosk's partial results are not final enough to end a turn on (no early end)."""
        return None

    def finish(self) -> Transcript:
        self._finals.append(json.loads(self._recognizer.FinalResult()))
        words = [w for result in self._finals for w in result.get("result", []) if w.get("word") != UNKNOWN]
        text = _clean(" ".join(r.get("text", "") for r in self._finals))
        confidence = sum(w.get("conf", 0.0) for w in words) / len(words) if words else 0.0
        return Transcript(text, round(confidence, 3), final=True, raw=text)

    def _changed(self, text: str) -> Optional[Transcript]:
        if not text or text == self._partial:
            return None
        self._partial = text
        return Transcript(text, 0.0, final=False, raw=text)

    def _so_far(self, partial: str) -> str:
        return _clean(" ".join([*(r.get("text", "") for r in self._finals), partial]))


def _clean(text: str) -> str:
    return " ".join(w for w in text.split() if w != UNKNOWN)
