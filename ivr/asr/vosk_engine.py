"""Vosk: the primary, streaming recognizer. One shared Model per process, a recognizer per utterance."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from ivr.asr.base import RecognitionError
from ivr.asr.hints import vosk_grammar
from ivr.events import AudioChunk, Expectation, Transcript

PULL_HINT = "run `ivr models pull` (needs a network) or pass --vosk-model DIR"


def looks_like_model(folder: Path) -> bool:
    return (folder / "am").is_dir() or (folder / "conf" / "model.conf").is_file()


class VoskRecognizer:
    def __init__(self, model_dir: Path):
        import vosk

        folder = Path(model_dir)
        if not looks_like_model(folder):
            raise RecognitionError(f"{folder}: not a Vosk model folder (no am/ or conf/model.conf); {PULL_HINT}")
        vosk.SetLogLevel(-1)
        try:
            self._model = vosk.Model(str(folder))
        except Exception as exc:  # vosk raises a bare Exception when Kaldi refuses the files
            raise RecognitionError(f"{folder}: Vosk could not load this model ({exc}); {PULL_HINT}") from exc
        self._vosk = vosk
        self.name = f"vosk ({folder.name})"
        self.folder = folder

    def knows(self, word: str) -> bool:
        return self._model.vosk_model_find_word(word) >= 0

    def utterance(self, rate: int, expects: Expectation) -> "VoskUtterance":
        return self.restricted(rate, vosk_grammar(expects))

    def restricted(self, rate: int, grammar: Optional[list[str]]) -> "VoskUtterance":
        """An utterance limited to the grammar's words (those the model knows), or open when None."""
        if grammar is not None:
            grammar = [" ".join(w for w in line.split() if w == "[unk]" or self.knows(w)) for line in grammar]
            grammar = grammar if any(g.replace("[unk]", "").strip() for g in grammar) else None
        if grammar is not None:
            recognizer = self._vosk.KaldiRecognizer(self._model, float(rate), json.dumps(grammar))
        else:
            recognizer = self._vosk.KaldiRecognizer(self._model, float(rate))
        recognizer.SetWords(True)
        return VoskUtterance(recognizer, rate)


class VoskUtterance:
    def __init__(self, recognizer, rate: int):
        self._recognizer, self._rate = recognizer, rate
        self._finals: list[dict] = []
        self._partial = ""

    def feed(self, chunk: AudioChunk) -> Optional[Transcript]:
        if chunk.rate != self._rate:
            raise ValueError(f"this utterance runs at {self._rate} Hz, got {chunk.rate} Hz")
        if self._recognizer.AcceptWaveform(chunk.pcm):
            self._finals.append(json.loads(self._recognizer.Result()))
            return None
        partial = json.loads(self._recognizer.PartialResult()).get("partial", "")
        if partial and partial != self._partial:
            self._partial = partial
            return Transcript(self._so_far(partial), 0.0, final=False)
        return None

    def speculate(self) -> None:
        """Vosk decodes as audio arrives; nothing to start early."""

    def finish(self) -> Transcript:
        self._finals.append(json.loads(self._recognizer.FinalResult()))
        words = [w for result in self._finals for w in result.get("result", [])]
        text = " ".join(t for t in (r.get("text", "") for r in self._finals) if t).replace("[unk]", "").strip()
        confidence = sum(w.get("conf", 0.0) for w in words) / len(words) if words else 0.0
        return Transcript(" ".join(text.split()), round(confidence, 3), raw=text)

    def _so_far(self, partial: str) -> str:
        return " ".join([*(r.get("text", "") for r in self._finals), partial]).strip()
