"""The recognizer's shared decoders under many callers, with the real Whisper tiny.en and real speech:
a caller who stopped talking is decoded before other callers' guesses, a guess is not even queued when
the decoders are behind, what became of each guess is counted, and decoding gives way to the rest of
the process (its CPU time is spent at a lower priority). No timings: the decoders are held busy on
purpose (a job waiting on an event) so the order is certain."""
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ivr.asr.numbers import normalise
from ivr.asr.pool import DEFAULT_NICE, NICE, decoder_nice
from ivr.asr.whisper_engine import WhisperRecognizer
from ivr.audio.pcm import phone_channel, read_wav, split
from ivr.errors import UserError
from ivr.events import FREE, AudioChunk, Expectation

ACCOUNT = Expectation("digits", 8)
DEADLINE = 120.0  # seconds for a condition on a busy machine; never a measure of speed


@pytest.fixture(scope="module")
def whisper():
    return WhisperRecognizer()


@pytest.fixture(scope="module")
def flite(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flite")

    def render(text: str, rate: int = 16000) -> AudioChunk:
        path = folder / f"{abs(hash(text))}.wav"
        subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(path)], check=True)
        return read_wav(path, rate)

    return render


def silence(seconds: float, rate: int = 16000) -> AudioChunk:
    return AudioChunk(bytes(2 * int(seconds * rate)), rate)


def said(utterance, *parts: AudioChunk):
    for part in parts:
        for chunk in split(part, 0.02):
            utterance.feed(chunk)
    return utterance


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


class HeldDecoders:
    """Every decoder busy until let go, one at a time: what 16 callers' decodes do to a 2-core machine."""

    def __init__(self, whisper):
        self.gates = [threading.Event() for _ in range(whisper.pool.workers)]
        self.jobs = [whisper.pool.submit(gate.wait) for gate in self.gates]
        wait_for(lambda: all(job.running() for job in self.jobs), "every decoder busy")

    def let_one_go(self):
        self.gates.pop().set()

    def let_all_go(self):
        while self.gates:
            self.let_one_go()


def counts_after(whisper, act) -> dict:
    before = whisper.pool.snapshot()
    act()
    return {k: n - before.get(k, 0) for k, n in whisper.pool.snapshot().items() if n != before.get(k, 0)}


def test_a_caller_who_stopped_talking_is_decoded_before_another_caller_s_guess(whisper, speak):
    held = HeldDecoders(whisper)
    pausing = said(whisper.utterance(16000, FREE), speak("check my balance"))
    pausing.speculate()  # queued first
    done = said(whisper.utterance(16000, FREE), speak("I want to pay my bill"), silence(0.3))
    with ThreadPoolExecutor(1) as caller:
        answer = caller.submit(done.finish)
        wait_for(lambda: whisper.pool.waiting() == 2, "the final queued behind the guess")
        third_caller = threading.Event()  # a third caller's final, after both: it too goes before the guess
        whisper.pool.submit(third_caller.wait)
        held.let_one_go()
        assert "pay my bill" in answer.result(DEADLINE).text.lower()
    assert not pausing._speculation.running() and not pausing._speculation.done()  # still waiting its turn
    third_caller.set()
    held.let_all_go()
    assert "balance" in said(pausing, silence(0.5)).finish().text.lower()


def test_no_guess_is_queued_when_the_decoders_are_behind_and_the_caller_is_still_understood(whisper, flite):
    held = HeldDecoders(whisper)
    first = said(whisper.utterance(16000, FREE), flite("goodbye"), silence(0.3))
    with ThreadPoolExecutor(1) as caller:
        waiting = caller.submit(first.finish)
        wait_for(lambda: whisper.pool.waiting() == 1, "another caller's final waiting")
        account = said(whisper.utterance(8000, ACCOUNT), phone_channel(flite("four eight one five one six two three")))
        counts = counts_after(whisper, account.speculate)
        assert counts == {"speculations skipped": 1}
        assert account.guess() is None  # nothing to end the turn early on: the endpoint silence ends it
        held.let_all_go()
        assert "goodbye" in waiting.result(DEADLINE).text.lower()
    assert normalise(account.finish().text, ACCOUNT) == "48151623"


def test_what_became_of_each_guess_is_counted(whisper, speak):
    kept = said(whisper.utterance(16000, FREE), speak("check my balance"))
    kept.speculate()
    wait_for(lambda: kept._speculation.done(), "the guess decoded")
    assert counts_after(whisper, lambda: said(kept, silence(0.5)).finish()) == {"speculations used": 1}

    overtaken = said(whisper.utterance(16000, FREE), speak("I want to"), silence(0.3))
    overtaken.speculate()
    wait_for(lambda: overtaken._speculation.done(), "the guess decoded")
    said(overtaken, speak("change my address"), silence(0.3))
    assert counts_after(whisper, overtaken.finish) == {"speculations wasted": 1, "finals": 1}


def test_four_callers_at_once_each_heard_right_whatever_their_window(whisper, flite):
    """Digit turns decode in a 15 s window, sentences in 10 s: decodes side by side must not share one."""
    callers = [(FREE, "I want to check my balance", "check my balance"),
               (ACCOUNT, "four eight one five one six two three", "48151623"),
               (FREE, "I want to pay my bill", "pay my bill"),
               (ACCOUNT, "nine nine three one two zero zero four", "99312004")]
    utterances = [said(whisper.utterance(8000, expects), phone_channel(flite(text))) for expects, text, _ in callers]
    with ThreadPoolExecutor(len(callers)) as lines:
        heard = list(lines.map(lambda u: u.finish(), utterances))
    for (expects, _, meant), transcript in zip(callers, heard):
        assert meant in normalise(transcript.text, expects).lower(), transcript


def test_a_guess_still_waiting_when_its_caller_stops_talking_becomes_their_final(whisper, speak):
    """In its place in the queue: before the finals of callers who stopped talking after it was queued."""
    held = HeldDecoders(whisper)
    stopped = said(whisper.utterance(16000, FREE), speak("check my balance"))
    stopped.speculate()
    said(stopped, silence(0.5))  # only silence since: that guess is the answer, no second decode
    later_caller = threading.Event()  # a final queued after the guess; it holds its decoder until let go
    later = whisper.pool.submit(later_caller.wait)
    used = whisper.pool.snapshot().get("speculations used", 0)
    with ThreadPoolExecutor(1) as caller:
        answer = caller.submit(stopped.finish)
        wait_for(lambda: whisper.pool.snapshot().get("speculations used", 0) > used, "the caller's turn taken")
        held.let_one_go()
        assert answer.result(DEADLINE) is stopped._speculation.result()
        assert "balance" in answer.result().text.lower()
    later_caller.set()
    held.let_all_go()
    assert later.result(DEADLINE)


def threads() -> dict[int, tuple[int, int]]:
    """This process's threads: nice value and CPU ticks (user + system) of each, from /proc."""
    found = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        found[int(tid)] = (int(fields[16]), int(fields[11]) + int(fields[12]))
    return found


def test_decoding_gives_way_to_the_bot_s_audio_loop(whisper, flite):
    """With every core decoding, the loop pacing the bot's audio must still get a core when it wakes:
    the decoders and the engine's own threads run at a lower priority, the rest of the process does not."""
    usual = os.getpriority(os.PRIO_PROCESS, 0)
    assert threads()[threading.get_native_id()][0] == usual  # this thread, as the event loop's, untouched
    together = threading.Barrier(whisper.pool.workers)  # one job on each decoder thread at once
    jobs = [whisper.pool.submit(lambda: (together.wait(DEADLINE), threading.get_native_id())[1])
            for _ in range(whisper.pool.workers)]
    decoders = {job.result(DEADLINE) for job in jobs}
    assert {threads()[tid][0] for tid in decoders} == {usual + DEFAULT_NICE}

    before = threads()
    heard = said(whisper.utterance(8000, FREE), phone_channel(flite("I want to check my balance"))).finish()
    assert "balance" in heard.text.lower()
    spent = {tid: ticks - before[tid][1] for tid, (nice, ticks) in threads().items() if tid in before}
    lowered = sum(n for tid, n in spent.items() if threads()[tid][0] > usual)
    assert lowered > sum(spent.values()) / 2, (spent, threads())  # the decode's CPU went to lowered threads


def test_a_decoder_priority_that_is_not_a_nice_step_is_refused(monkeypatch):
    monkeypatch.setenv(NICE, "loud")
    with pytest.raises(UserError, match="0 to 19"):
        decoder_nice()
    monkeypatch.setenv(NICE, "0")
    assert decoder_nice() == 0  # decoders as the rest: how the benchmark compares
