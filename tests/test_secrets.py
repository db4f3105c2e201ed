"""A caller's PIN and card number exist only sealed: nowhere the product writes can they be read back."""
import json
import logging
import re
from pathlib import Path

import numpy as np

from ivr.audio.endpointer import Endpointer
from ivr.audio.pcm import read_wav, split
from ivr.audio.recording import Recording
from ivr.events import FREE, AudioChunk, SpeechEnded
from ivr.tools.simulate import CHANNELS, caller_items, judge, load_scenario
from ivr.transports.files import CallerFiles

PIN, CARD = "2468", "4111111111111111"
SCENARIO = """
name: a payment with a spoken PIN and a keyed new card
caller: {voice: "festival:cmu_us_slt_arctic_hts", channel: wideband}
turns:
  - say: "I want to pay my bill."
    expect: {intent: pay_bill}
  - dtmf: "48151623#"
    expect: {bot_says: "PIN"}
  - say: "two four six eight"
    expect: {bot_says: "how much"}
  - say: "fifty dollars"
    expect: {bot_says: "card ending 4242"}
  - say: "a new card"
    expect: {bot_says: "card number"}
  - say: "four one one one one one one one one one one one one one one one"
    expect: {bot_says: "keypad"}
  - dtmf: "4111111111111111#"
    expect: {bot_says: "expiry"}
  - dtmf: "1230"
    expect: {bot_says: "\\\\$50\\\\.00 with the card ending 1111"}
  - say: "yes"
    expect: {bot_says: "confirmation number"}
  - say: "goodbye"
expect: {outcome: self_served, task: bill_pay}
"""


def leaks(text: str, besides: str = "") -> list[str]:
    """Where a text shows the PIN or the card number, in the ways a person or a program would write them.

    Digits inside a longer number are not the PIN: a timestamp's microseconds, a latency, or the
    random confirmation number `besides` (read back "K M 4 8 2 4 6 8") may end in 2468 by chance."""
    if besides:
        text = re.sub(r"\W{0,3}".join(map(re.escape, besides)), "", text, flags=re.IGNORECASE)
    patterns = [rf"(?<![\d.]){PIN}(?!\d)", r"(?<![\d.])2\W{0,3}4\W{0,3}6\W{0,3}8(?!\d)", "two four six eight",
                r"4111\W?1111\W?1111\W?1111", r"4\W1\W1\W1\W1\W1\W1\W1", "four one one one"]
    return [text[max(0, m.start() - 40):m.end() + 40] for p in patterns for m in re.finditer(p, text, re.IGNORECASE)]


def transcripts(recognizer, channel: AudioChunk) -> list[str]:
    """What a recognizer makes of every utterance on one channel of a recording."""
    endpointer, heard = Endpointer(channel.rate), []
    for chunk in split(channel, 0.02):
        for event in endpointer.feed(chunk):
            if isinstance(event, SpeechEnded):
                utterance = recognizer.utterance(channel.rate, FREE)
                utterance.feed(event.audio)
                heard.append(utterance.finish().text)
    return heard


def test_a_pin_and_card_number_reach_no_file_log_tracker_or_recording(bot, event_loop_for_bot, accounts, var_dir, tmp_path):
    scenario_path = tmp_path / "secrets.yml"
    scenario_path.write_text(SCENARIO)
    scenario = load_scenario(scenario_path)
    log_path = var_dir / "logs" / "ivr.log"
    log_path.parent.mkdir(exist_ok=True)
    handler = logging.FileHandler(log_path)
    root = logging.getLogger()
    root.addHandler(handler)
    old_level, root.level = root.level, logging.DEBUG
    try:
        transport = CallerFiles(caller_items(scenario), CHANNELS[scenario.channel], wait_limit=6.5)
        recording = Recording(transport.rate)
        call = bot.call(transport, "files", recording=recording, scripted=[t.say for t in scenario.turns if t.dtmf is None])
        result = event_loop_for_bot.run_until_complete(call.run())
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(old_level)
    verdict = judge(scenario, result, {})
    assert verdict["passed"], verdict["failures"]
    (var_dir / "recordings").mkdir(exist_ok=True)
    recording.save(var_dir / "recordings" / "call.wav")

    confirmation = accounts.payments("48151623")[-1].confirmation
    shown = json.dumps(verdict) + json.dumps(result.as_dict())
    assert leaks(shown, confirmation) == [], "the call's own report (what ivr simulate --json prints)"
    tracker = json.dumps(event_loop_for_bot.run_until_complete(bot.dialog.history(result.call_id)))
    assert leaks(tracker, confirmation) == [], "the Rasa tracker"
    assert '"sealed"' in tracker  # the PIN did reach the dialog, sealed
    for path in sorted(p for p in Path(var_dir).rglob("*") if p.is_file()):
        assert leaks(path.read_bytes().decode("latin-1"), confirmation) == [], path
    assert accounts.payments("48151623")[-1].card_last4 == "1111"

    with_call = read_wav(var_dir / "recordings" / "call.wav")
    heard = " ".join(transcripts(bot.recognizer, caller_channel(var_dir / "recordings" / "call.wav")))
    assert "fifty" in heard.lower() or "50" in heard, heard  # the caller's other words are kept
    assert leaks(heard) == [], f"the recording still speaks the PIN or card: {heard}"
    assert with_call.seconds > 10


def caller_channel(path: Path) -> AudioChunk:
    import wave

    with wave.open(str(path)) as wav:
        frames = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, wav.getnchannels())
        return AudioChunk(frames[:, 0].copy().tobytes(), wav.getframerate())
