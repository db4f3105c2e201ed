"""A quiet caller on a weak line (a real voice that never reaches the dead-air voice level) who was
understood is someone there: going quiet later gets the usual reprompts, never "I can't hear anything"
and a hang-up. On the virtual clock (tests/call_harness.py) with a real flite utterance turned down."""
import subprocess

import numpy as np
import pytest

from call_harness import Dialog, Line, Recognizer, run_call
from ivr.audio.endpointer import Endpointer, Timing
from ivr.audio.pcm import read_wav
from ivr.call import DEAD_AIR
from ivr.dialog.agent import DialogReply
from ivr.dialog.settings import JunkSettings
from ivr.events import AudioChunk, Prompt
from ivr.masking import Seal

QUIET_DBFS = -46.0  # its loudest frame just under the dead-air voice level (-45); most of it far softer


def loudest_voice(speech: AudioChunk) -> float:
    endpointer = Endpointer(speech.rate, Timing())
    endpointer.feed(speech)
    return endpointer.loudest_voice_dbfs


@pytest.fixture(scope="module")
def soft_voice(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quiet")
    subprocess.run(["flite", "-voice", "slt", "-t", "check my balance", "-o", str(folder / "s.wav")], check=True)
    subprocess.run(["sox", str(folder / "s.wav"), "-r", "16000", str(folder / "s16.wav")], check=True)
    speech = read_wav(folder / "s16.wav")
    gain = 10 ** ((QUIET_DBFS - loudest_voice(speech)) / 20)
    samples = np.frombuffer(speech.pcm, dtype=np.int16).astype(np.float64) * gain
    quiet = AudioChunk(samples.round().astype(np.int16).tobytes(), speech.rate, 0.0)
    assert Timing().speech_floor_dbfs < loudest_voice(quiet) < JunkSettings().voice_level_dbfs
    return quiet


def still_there() -> Dialog:
    greeting = DialogReply([Prompt("How can I help?", "utter_greet")])
    return Dialog(greeting, {"*": DialogReply([Prompt("Are you still there?", "utter_ask")])})


def test_a_soft_voice_that_was_understood_is_never_hung_up_on_as_dead_air(soft_voice, tmp_path):
    line, recognizer, dialog = Line(soft_voice, says_at=[1.0], hangs_up_at=45.0), Recognizer(), still_there()
    recognizer.heard = ["check my balance"]
    run_call(line, dialog, recognizer, Seal(tmp_path))

    said = [text for _, text in dialog.received]
    assert said[0] == "check my balance" and said[1:] == ["/no_input"] * (len(said) - 1)
    assert len(said) - 1 > JunkSettings().silent_reprompts + 1  # silent past the point a dead line hangs up
    assert DEAD_AIR not in said


def test_the_same_line_with_no_voice_at_all_is_still_dead_air(soft_voice, tmp_path):
    line, dialog = Line(soft_voice, says_at=[], hangs_up_at=45.0), still_there()
    run_call(line, dialog, Recognizer(), Seal(tmp_path))

    said = [text for _, text in dialog.received]
    reprompts = JunkSettings().silent_reprompts
    assert said[:reprompts + 1] == ["/no_input"] * reprompts + [DEAD_AIR]
