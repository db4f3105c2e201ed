"""`ivr bench accuracy`: how well callers are understood, from audio to intent and slot values.

Every labelled utterance is spoken by a synthetic caller (voices and rates in turn) and heard in
three line conditions: wideband 16 kHz; the phone (8 kHz G.711 mu-law, 300-3400 Hz); the phone
with background noise at 10 dB SNR. Figures: word error rate, intent accuracy (audio -> intent,
for answers to open questions), exact slot values per prompt (one wrong digit fails the task).
"""
from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import jiwer
import numpy as np
import yaml
from text_to_num import alpha2digit

from ivr.asr.numbers import normalise, words
from ivr.audio.pcm import WIDEBAND_RATE, phone_channel, resample, split
from ivr.config import Settings
from ivr.events import AudioChunk, Expectation
from ivr.tools.caller_voices import parse_voice

CONDITIONS = ("wideband", "phone", "phone+noise")
NOISE_SNR_DB = 10.0
VOICES = (("espeak:en-us", 150), ("flite:slt", None), ("espeak:en-gb", 170), ("flite:kal", None),
          ("espeak:en-us+f3", 140), ("festival:cmu_us_slt_arctic_hts", None), ("espeak:en-us", 190),
          ("flite:rms", None))


@dataclass(frozen=True)
class Labelled:
    say: str
    intent: str  # "inform|deny": either will do
    expects: Expectation
    slot: Optional[str]
    prompt: str  # free, account, pin, zip, amount, street
    move: Optional[str] = None  # a caller move at a question (tests/data/repair.yml): cancel, help, wait …

    @property
    def scored_for_intent(self) -> bool:
        return self.prompt == "free" or self.move is not None


def intent_matches(expected: str, got: Optional[str]) -> bool:
    return got in expected.split("|")


def load_set(path: Path) -> list[Labelled]:
    items = []
    for raw in yaml.safe_load(path.read_text())["utterances"]:
        kind = raw.get("expects", "free")
        items.append(Labelled(raw["say"], raw["intent"], Expectation(kind, raw.get("length")),
                              str(raw["slot"]) if "slot" in raw else None, raw.get("prompt", "free"), raw.get("move")))
    return items


def comparable(text: str) -> str:
    """Words for the word error rate: lower case, numbers as single digits ("forty eight" = "4 8")."""
    spoken = alpha2digit(" ".join(words(text)), "en")
    return " ".join(" ".join(w) if w.isdigit() else w for w in spoken.split())


def with_noise(audio: AudioChunk, snr_db: float, seed: int) -> AudioChunk:
    """Background noise at the caller's end, `snr_db` below the speech (measured where there is speech)."""
    samples = np.frombuffer(audio.pcm, "<i2").astype(np.float64)
    frames = samples[: len(samples) // 320 * 320].reshape(-1, 320)
    loud = frames[np.sqrt((frames ** 2).mean(axis=1)) > 0.05 * np.abs(samples).max()]
    speech_power = (loud ** 2).mean() if len(loud) else (samples ** 2).mean()
    noise = np.random.default_rng(seed).normal(0, 1, len(samples))
    noise = np.convolve(noise, np.ones(4) / 4, mode="same")  # a little less hiss, more rumble
    noise *= np.sqrt(speech_power / (noise ** 2).mean() / 10 ** (snr_db / 10))
    return AudioChunk(np.clip(samples + noise, -32768, 32767).astype("<i2").tobytes(), audio.rate)


def on_the_line(audio: AudioChunk, condition: str, seed: int) -> AudioChunk:
    wideband = resample(audio, WIDEBAND_RATE)
    if condition == "wideband":
        return wideband
    if condition == "phone":
        return phone_channel(wideband)
    return phone_channel(with_noise(wideband, NOISE_SNR_DB, seed))


def hear(recognizer, audio: AudioChunk, expects: Expectation) -> str:
    utterance = recognizer.utterance(audio.rate, expects)
    silence = AudioChunk(bytes(int(audio.rate * 0.3) * 2), audio.rate)
    for chunk in split(AudioChunk(silence.pcm + audio.pcm + silence.pcm, audio.rate), 0.02):
        utterance.feed(chunk)
    return utterance.finish().text


async def measure(settings: Settings, data: Path, limit: Optional[int] = None) -> dict[str, Any]:
    from ivr.asr.models import load_recognizer
    from ivr.dialog.agent import Dialog
    from ivr.dialog.settings import load_voice_settings
    import logging

    items = load_set(data)[:limit]
    loop = asyncio.get_running_loop()
    recognizer = await loop.run_in_executor(None, lambda: load_recognizer(
        settings.vosk_model, settings.whisper_model, settings.models_dir, logging.getLogger("ivr")))
    dialog = await Dialog.load(settings.dialogs_dir, settings.models_dir, load_voice_settings(settings.dialogs_dir),
                                   settings.var_dir)
    results: dict[str, list[dict]] = defaultdict(list)
    try:
        for index, item in enumerate(items):
            voice, rate = VOICES[index % len(VOICES)]
            spoken = await loop.run_in_executor(None, parse_voice(voice).speak, item.say, rate)
            for condition in CONDITIONS:
                audio = on_the_line(spoken, condition, seed=index)
                text = await loop.run_in_executor(None, hear, recognizer, audio, item.expects)
                heard = normalise(text, item.expects)
                intent = (await dialog.parse(heard))[0] if item.scored_for_intent else None
                results[condition].append({"said": item.say, "voice": voice, "heard": text, "value": heard,
                                           "intent": intent, "expected": item.intent, "slot": item.slot,
                                           "prompt": item.prompt, "move": item.move})
    finally:
        await dialog.close()
    return {"recognizer": recognizer.name, "utterances": len(items),
            "conditions": {c: summary(results[c]) for c in CONDITIONS}}


def summary(rows: list[dict]) -> dict[str, Any]:
    references = [comparable(r["slot"] if r["slot"] and r["prompt"] != "amount" else r["said"]) for r in rows]
    hypotheses = [comparable(r["value"] if r["slot"] and r["prompt"] != "amount" else r["heard"]) for r in rows]
    intents = [r for r in rows if r["prompt"] == "free" or r.get("move")]
    scored = [(r["expected"], r["intent"]) for r in intents]
    slots: dict[str, list[bool]] = defaultdict(list)
    moves: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        if r["slot"] is not None:
            slots[r["prompt"]].append(r["value"] == r["slot"])
        if r.get("move"):
            moves[r["move"]].append(intent_matches(r["expected"], r["intent"]))
    digit_strings = [ok for prompt in ("account", "pin", "zip") for ok in slots.get(prompt, [])]
    return {
        "word_error_rate": round(jiwer.wer(references, hypotheses), 4) if rows else None,
        "intent_accuracy": round(sum(intent_matches(e, i) for e, i in scored) / len(scored), 4) if scored else None,
        "digit_strings_exact": round(sum(digit_strings) / len(digit_strings), 4) if digit_strings else None,
        "slots_exact": {p: round(sum(v) / len(v), 4) for p, v in sorted(slots.items())},
        "moves": {m: round(sum(v) / len(v), 4) for m, v in sorted(moves.items())},
        "confusion": {f"{e} -> {i}": n for (e, i), n in sorted(Counter(scored).items())},
        "misheard": [{k: r[k] for k in ("said", "voice", "heard", "intent", "expected")} for r in rows
                     if (r in intents and not intent_matches(r["expected"], r["intent"]))
                     or (r["slot"] is not None and r["value"] != r["slot"])][:25],
    }


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    intents = sorted({pair.split(" -> ")[0] for c in report["conditions"].values() for pair in c["confusion"]})
    labels = intents + sorted({pair.split(" -> ")[1] for c in report["conditions"].values()
                               for pair in c["confusion"]} - set(intents))
    figure, axes = plt.subplots(1, len(CONDITIONS), figsize=(6 * len(CONDITIONS), 5.5))
    for axis, condition in zip(axes, CONDITIONS):
        matrix = np.zeros((len(intents), len(labels)))
        for pair, count in report["conditions"][condition]["confusion"].items():
            said, heard = pair.split(" -> ")
            matrix[intents.index(said), labels.index(heard)] = count
        axis.imshow(matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
        axis.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
        axis.set_yticks(range(len(intents)), intents, fontsize=8)
        accuracy = report["conditions"][condition]["intent_accuracy"]
        axis.set_title(f"{condition}: intent accuracy {accuracy:.0%}" if accuracy is not None else condition)
        axis.set_xlabel("understood as")
        for (row, column), count in np.ndenumerate(matrix):
            if count:
                axis.text(column, row, int(count), ha="center", va="center", fontsize=7)
    axes[0].set_ylabel("caller meant")
    figure.suptitle(f"Intent confusion, audio to intent ({report['recognizer']}, {report['utterances']} utterances)")
    figure.tight_layout(rect=(0, 0, 1, 0.94))  # room for the title above the panels
    figure.savefig(path, dpi=110)
    plt.close(figure)


def accuracy(settings: Settings, data: Path, as_json: bool, plot_to: Optional[Path], limit: Optional[int],
             calibration: Optional[dict] = None) -> int:
    """`calibration`: the machine's figure (ivr/tools/calibration.py), already printed; kept in the JSON
    so every benchmark's report says what it ran on, though these figures do not depend on speed."""
    report = {"calibration": calibration, **asyncio.run(measure(settings, data, limit))}
    if plot_to:
        plot(report, plot_to)
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"recognizer: {report['recognizer']}   utterances: {report['utterances']} in each condition")
    print(f"{'condition':<14}{'WER':>8}{'intent':>9}{'digits':>9}  slots exact")
    for condition, figures in report["conditions"].items():
        slots = ", ".join(f"{p} {v:.0%}" for p, v in figures["slots_exact"].items())
        print(f"{condition:<14}{_pct(figures['word_error_rate']):>8}{_pct(figures['intent_accuracy']):>9}"
              f"{_pct(figures['digit_strings_exact']):>9}  {slots}")
        if figures["moves"]:
            print(f"{'':<14}caller moves: " + ", ".join(f"{m} {v:.0%}" for m, v in figures["moves"].items()))
    if plot_to:
        print(f"confusion plot: {plot_to}")
    return 0


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1%}"
