"""Free speech ends sooner when it is a finished request, and never cuts a caller who pauses mid-sentence.

Through the whole bot (real Whisper, real Rasa): a caller who stops after "I want to", then, after a pause
longer than the early end's silence, says the rest, is heard as one turn and served for what they asked.
The timing of the early end itself is covered on the virtual clock (tests/test_call_timeline.py)."""
import subprocess
from pathlib import Path

import yaml

from ivr.audio.pcm import read_wav, write_wav
from ivr.events import AudioChunk
from ivr.tools.simulate import load_scenario, run_scenario

PAUSE_S = 0.45  # longer than answered_free_ms (350), shorter than trailing_silence_ms (500)


def paused_sentence(folder, first: str, rest: str) -> Path:
    """One flite caller saying `first`, silent for PAUSE_S, then `rest`: a hesitation inside one sentence."""
    parts = []
    for number, words in enumerate((first, rest)):
        raw, wav = folder / f"raw{number}.wav", folder / f"part{number}.wav"
        subprocess.run(["flite", "-voice", "slt", "-t", words, "-o", str(raw)], check=True)
        # flite's own lead-in and tail silence trimmed, so the pause is the one put in here
        subprocess.run(["sox", str(raw), "-r", "16000", "-b", "16", "-t", "wavpcm", str(wav), "silence", "1", "0.02",
                        "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"], check=True)
        parts.append(read_wav(wav))
    lead, pause = bytes(int(0.3 * 16000) * 2), bytes(int(PAUSE_S * 16000) * 2)
    out = folder / "paused.wav"
    write_wav(out, AudioChunk(lead + parts[0].pcm + pause + parts[1].pcm + lead, 16000))
    return out


def test_a_caller_who_pauses_after_i_want_to_is_heard_whole_and_served(bot, event_loop_for_bot, accounts, tmp_path):
    audio = paused_sentence(tmp_path, "I want to", "check my balance")
    scenario = tmp_path / "paused.yml"
    scenario.write_text(yaml.safe_dump({
        "name": "a pause inside the caller's first sentence", "caller": {"voice": "flite:slt"},
        "turns": [{"audio": audio.name, "expect": {"intent": "check_balance", "bot_says": "account number"}}]}))
    result = event_loop_for_bot.run_until_complete(run_scenario(bot, load_scenario(scenario)))

    turns = [(t["heard"], t["intent"]) for t in result["turns"]]
    assert result["passed"], f"{result['failures']} {turns}"
    assert len(turns) == 1, turns  # one turn, not "I want to" and then "check my balance" over the bot's reply
    assert "want" in turns[0][0].lower() and "balance" in turns[0][0].lower(), turns
