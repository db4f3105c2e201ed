"""When things happen in a call, on a virtual clock (tests/call_harness.py): barge-in, no-input, keys, and
the hold's timeline to an agent. The Call, endpointer, speaker, hold and queue are the real ones; the
recognizer, dialog, voice and line are doubles of their stage interfaces. Each test covers a minute or more
of call time in well under a second, the same way every run."""
from dataclasses import replace
from typing import Optional

import pytest

from call_harness import flite_speech, Dialog, Line, Recognizer, run_call
from ivr.audio.endpointer import Timing
from ivr.call import Backstage
from ivr.dialog.agent import DialogReply
from ivr.dialog.settings import EndpointSettings, HoldSettings
from ivr.events import Escalation, Expectation, Prompt
from ivr.masking import Seal
from ivr.queue import TAKEN, QueueStore

# the endpointing the shipped voice.yml gives (which requests may end free speech early, among others)
SHIPPED_TIMING = replace(Timing(), answered_ms=EndpointSettings().answered_ms,
                         answered_free_intents=EndpointSettings().answered_free_intents)
GREETING = "Hello, thanks for calling. You can pay a bill, check your balance, or change your address. How can I help?"
FRAME = 0.02


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return flite_speech(tmp_path_factory.mktemp("timeline"), "I want to talk to an agent")


@pytest.fixture
def seal(tmp_path):
    return Seal(tmp_path)


def greeting(barge_in=True) -> DialogReply:
    return DialogReply([Prompt(GREETING, "utter_greet", barge_in=barge_in)])


def voiced_from(speech) -> float:
    """Where the utterance's voice begins (flite leads with a little silence)."""
    import webrtcvad

    vad, frame = webrtcvad.Vad(2), int(16000 * FRAME) * 2
    for index in range(0, len(speech.pcm) - frame, frame):
        if vad.is_speech(speech.pcm[index:index + frame], 16000):
            return index / 2 / 16000
    raise AssertionError("no speech in the caller's audio")


def test_a_caller_who_talks_over_the_greeting_cuts_it_at_once_and_is_heard(speech, seal):
    line, recognizer = Line(speech, says_at=[2.0], hangs_up_at=12.0), Recognizer()
    recognizer.heard = ["I want to talk to an agent"]
    dialog = Dialog(greeting(), {"I want to talk to an agent": DialogReply([Prompt("Sure.", "utter_ok")])})
    run_call(line, dialog, recognizer, seal)

    voice_at = 2.0 + voiced_from(speech)
    assert len(line.clears) >= 1 and voice_at < line.clears[0] <= voice_at + 0.2  # within the 120 ms start
    cut = line.said("You can pay a bill")
    assert cut.cut and cut.end == line.clears[0]
    assert not any("How can I help" in heard.text for heard in line.heard)  # the rest was never played
    (at, text), = dialog.received[:1]
    assert text == "I want to talk to an agent"
    assert 2.0 + len(speech.pcm) / 32000 < at < 2.0 + len(speech.pcm) / 32000 + 0.8  # after 0.5 s of silence


def test_a_prompt_the_caller_may_not_talk_over_plays_to_the_end_and_the_talk_is_not_a_turn(speech, seal):
    line, recognizer = Line(speech, says_at=[2.0], hangs_up_at=16.0), Recognizer()
    recognizer.heard = ["I want to talk to an agent"]
    dialog = Dialog(greeting(barge_in=False), {"*": DialogReply([Prompt("Are you there?", "utter_ask")])})
    run_call(line, dialog, recognizer, seal)

    assert line.clears == [] and not any(heard.cut for heard in line.heard)
    ended = line.said("How can I help").end
    assert [text for _, text in dialog.received] == ["/no_input"]  # what was said over it is not an answer
    assert dialog.received[0][0] == pytest.approx(ended + 5.0, abs=2 * FRAME)


def test_silence_is_no_input_after_each_prompts_own_patience(speech, seal):
    line, recognizer = Line(speech, says_at=[], hangs_up_at=40.0), Recognizer()
    take_your_time = DialogReply([Prompt("Take your time.", "utter_wait", Expectation("question"),
                                         no_input_ms=20000)])
    dialog = Dialog(greeting(), {"/no_input": take_your_time})
    run_call(line, dialog, recognizer, seal)

    greeted = line.said("How can I help").end
    waited = line.said("Take your time").end
    assert [text for _, text in dialog.received] == ["/no_input", "/no_input"]
    assert dialog.received[0][0] == pytest.approx(greeted + 5.0, abs=2 * FRAME)
    assert dialog.received[1][0] == pytest.approx(waited + 20.0, abs=2 * FRAME)  # its own patience


def test_keys_cut_the_prompt_and_an_entry_at_its_length_is_a_turn_without_pound(speech, seal):
    account = DialogReply([Prompt("Please say or key in your 8 digit account number.", "utter_ask_account_number",
                                  Expectation("digits", 8))])
    line = Line(speech, keys_at=[(1.0, "1234"), (1.5, "5678"), (1.6, "#")], hangs_up_at=10.0)
    dialog = Dialog(account, {"12345678": DialogReply([Prompt("Thank you.", "utter_thanks")])})
    run_call(line, dialog, Recognizer(), seal)

    assert line.clears and line.clears[0] == pytest.approx(1.0, abs=FRAME)
    assert dialog.received[0] == (pytest.approx(1.5, abs=FRAME), "12345678")  # the pound after it is no new turn
    assert len(dialog.received) == 2 and dialog.received[1][1] == "/no_input"


def answered_at(speech, seal, expects: Expectation, heard: str, read_as: Optional[tuple[str, float]] = None) -> float:
    """When the dialog got the caller's answer to a question expecting `expects`, said at 1 s; `read_as`: the
    intent and confidence the dialog's NLU gives what was heard."""
    question = DialogReply([Prompt("Your answer?", "utter_ask", expects)])
    line, recognizer = Line(speech, says_at=[1.0], hangs_up_at=8.0), Recognizer()
    recognizer.heard = [heard]
    dialog = Dialog(question, {"*": DialogReply([Prompt("Thank you.", "utter_thanks")])},
                    {heard: read_as} if read_as else None)
    run_call(line, dialog, recognizer, seal, timing=SHIPPED_TIMING)
    return dialog.received[0][0]


def test_a_complete_answer_ends_the_turn_after_a_short_pause_and_anything_else_waits_longer(speech, seal):
    free = answered_at(speech, seal, Expectation("free"), "I want to talk to an agent")
    all_digits = answered_at(speech, seal, Expectation("digits", 8), "four eight one five one six two three")
    half_the_digits = answered_at(speech, seal, Expectation("digits", 8), "four eight one five")
    yes = answered_at(speech, seal, Expectation("yes_no"), "yes please")
    more_than_yes = answered_at(speech, seal, Expectation("yes_no"), "no, it's six two seven oh one")
    amount = answered_at(speech, seal, Expectation("amount"), "fifty dollars")
    assert free - all_digits == pytest.approx(0.3, abs=2 * FRAME)  # 200 ms of silence, not 500
    assert free - yes == pytest.approx(0.3, abs=2 * FRAME)
    assert free - amount == pytest.approx(0.25, abs=2 * FRAME)
    assert half_the_digits == free and more_than_yes == free  # a pause inside an answer never ends it early


def test_a_finished_request_in_free_speech_ends_sooner_and_a_sentence_that_leads_on_keeps_the_full_wait(speech, seal):
    free = answered_at(speech, seal, Expectation("free"), "I want to talk to an agent")  # no full stop: unfinished
    request = answered_at(speech, seal, Expectation("free"), "What is my balance?", ("check_balance", 0.99))
    trailing_off = answered_at(speech, seal, Expectation("free"), "I want to...", ("nlu_fallback", 0.4))
    leads_on = answered_at(speech, seal, Expectation("free"), "I want to pay my bill and.", ("pay_bill", 1.0))
    not_understood = answered_at(speech, seal, Expectation("free"), "My count numbers.", ("nlu_fallback", 0.4))
    greeting_first = answered_at(speech, seal, Expectation("free"), "Hello.", ("greet", 0.97))  # "Hello. I'd like..."
    street_first = answered_at(speech, seal, Expectation("free"), "422 Maple Avenue.", ("inform", 0.99))
    unsure = answered_at(speech, seal, Expectation("free"), "I'd like to care tomorrow.", ("out_of_scope", 0.7))
    assert free - request == pytest.approx(0.15, abs=2 * FRAME)  # 350 ms of silence, not 500
    assert trailing_off == leads_on == not_understood == unsure == free
    assert greeting_first == street_first == free  # no request yet: the caller may well go on


class Agents:
    """What happens at the agents' desks, at set times on the call's clock."""

    def __init__(self, store: QueueStore, name="ana", phone=None):
        self.store, self.name = store, name
        store.add_agent(name, "correct horse battery", "en,billing", sip_address=phone)
        store.set_agent_state(name, "available")

    def take_at(self, loop, at: float) -> None:
        """The agent, at their desk (again), takes the next caller."""
        loop.call_at(at, lambda: (self.store.set_agent_state(self.name, "available"), self.store.take_next(self.name)))


def hold_call(speech, seal, tmp_path, hangs_up_at: float, agents_at, line_cls=Line):
    store = QueueStore(f"sqlite:///{tmp_path / 'queue.db'}")
    agents = Agents(store, phone="sip:ana@127.0.0.1:5070" if line_cls is not Line else None)
    line, recognizer = line_cls(speech, says_at=[7.0], hangs_up_at=hangs_up_at), Recognizer()
    recognizer.heard = ["I want to talk to an agent"]
    transfer = DialogReply([Prompt("Sure, I'll connect you with an agent now.", "utter_transfer", barge_in=False)],
                           escalation=Escalation("caller_request"))
    dialog = Dialog(greeting(), {"I want to talk to an agent": transfer})
    backstage = Backstage(queue=store, hold=HoldSettings(announce_every_s=30))
    result = run_call(line, dialog, recognizer, seal, backstage,
                      before=lambda loop: [agents.take_at(loop, at) for at in agents_at])
    return result, line, store


def test_on_hold_the_caller_hears_their_place_every_interval_and_is_connected_when_taken(speech, seal, tmp_path):
    result, line, store = hold_call(speech, seal, tmp_path, hangs_up_at=120.0, agents_at=[80.0])

    announced = [heard for heard in line.heard if "in line" in heard.text]
    offers = [heard for heard in line.heard if "call you back" in heard.text]
    assert len(announced) == 2 == len(offers)  # on joining, then 30 s after the last one ended
    assert announced[1].start - offers[0].end == pytest.approx(30.0, abs=1.0 + 2 * FRAME)
    connecting = line.said("An agent is ready").start
    assert 80.0 <= connecting <= 81.0 + 2 * FRAME  # the hold looks for an agent every second
    assert not any(heard.start > connecting and heard.text == "(music)" for heard in line.heard)
    assert (result.outcome, result.queue_outcome) == ("escalated", TAKEN)
    assert store.entry(result.queue_entry).agent == "ana"


class AgentPhoneLine(Line):
    """A line that can ring an agent's phone: the first ring goes unanswered, the second is answered."""

    def __post_init__(self):
        super().__post_init__()
        self.rings: list[float] = []

    async def hand_over(self, address: str) -> bool:
        self.rings.append(self.now())
        return len(self.rings) > 1


def test_an_agent_whose_phone_does_not_answer_puts_the_caller_back_in_line_then_the_next_take_connects(
        speech, seal, tmp_path):
    result, line, store = hold_call(speech, seal, tmp_path, hangs_up_at=120.0, agents_at=[40.0, 70.0],
                                    line_cls=AgentPhoneLine)

    first_connecting = line.said("Connecting you")
    assert 40.0 <= first_connecting.start <= 41.0 + 2 * FRAME + 1.9  # "An agent is ready…" comes first
    assert len(line.rings) == 2 and line.rings[0] == pytest.approx(first_connecting.end, abs=2 * FRAME)
    unreachable = line.said("could not be reached").start
    assert unreachable == pytest.approx(line.rings[0], abs=2 * FRAME)  # told at once, never dead air
    assert any("in line" in heard.text and heard.start > unreachable for heard in line.heard)  # back on hold
    assert store.entry(result.queue_entry).enqueued_at < store.entry(result.queue_entry).taken_at
    assert 70.0 < line.rings[1] <= 71.0 + 2 * FRAME + 2.8
    entry = store.entry(result.queue_entry)
    assert (result.queue_outcome, entry.connected_at is not None) == (TAKEN, True)


def keyed_callback_call(seal, tmp_path, speech, store: QueueStore, agents: Agents, take_at: Optional[float]):
    """A caller with no number on the line asks for a callback on hold (1 at 20 s) and keys their number at
    30 s; the agent takes them at `take_at`."""
    line = Line(speech, says_at=[7.0], keys_at=[(20.0, "1"), (30.0, "2175550123#")], hangs_up_at=60.0)
    recognizer = Recognizer()
    recognizer.heard = ["I want to talk to an agent"]
    transfer = DialogReply([Prompt("Sure, I'll connect you with an agent now.", "utter_transfer", barge_in=False)],
                           escalation=Escalation("caller_request"))
    dialog = Dialog(greeting(), {"I want to talk to an agent": transfer})
    backstage = Backstage(queue=store, hold=HoldSettings(announce_every_s=30))
    before = (lambda loop: agents.take_at(loop, take_at)) if take_at is not None else None
    return run_call(line, dialog, recognizer, seal, backstage, before=before), line


def test_a_caller_taken_while_keying_a_callback_number_is_put_through_at_once(speech, seal, tmp_path):
    store = QueueStore(f"sqlite:///{tmp_path / 'queue.db'}")
    result, line = keyed_callback_call(seal, tmp_path, speech, store, Agents(store), take_at=25.0)

    assert line.said("key in the ten digit number").start < 25.0
    assert 25.0 <= line.said("An agent is ready").start <= 26.0 + 2 * FRAME  # not after the keying, nor never
    assert not any("no agent can take your call" in heard.text for heard in line.heard)
    assert (result.queue_outcome, store.entry(result.queue_entry).agent) == (TAKEN, "ana")


class TakenAsTheNumberIsBooked(QueueStore):
    """The agent's take commits between the hold's last look and the callback's booking."""
    taker = "ana"

    def request_callback(self, entry_id: int, number: str, now=None):
        self.set_agent_state(self.taker, "available")
        self.take_next(self.taker)
        return super().request_callback(entry_id, number, now)


def test_a_take_that_beats_the_callback_booking_puts_the_caller_through_not_queue_unavailable(
        speech, seal, tmp_path):
    store = TakenAsTheNumberIsBooked(f"sqlite:///{tmp_path / 'queue.db'}")
    result, line = keyed_callback_call(seal, tmp_path, speech, store, Agents(store), take_at=None)

    assert 30.0 <= line.said("An agent is ready").start <= 30.0 + 2 * FRAME
    assert not any("no agent can take your call" in heard.text for heard in line.heard)
    entry = store.entry(result.queue_entry)
    assert (result.queue_outcome, entry.state, entry.callback_number) == (TAKEN, TAKEN, None)


def callback_keyed_ahead(seal, tmp_path, speech, keys_at: list[tuple[float, str]]):
    """A caller with no number on the line, on hold, keys `keys_at`; nobody takes them."""
    store = QueueStore(f"sqlite:///{tmp_path / 'queue.db'}")
    line = Line(speech, says_at=[7.0], keys_at=keys_at, hangs_up_at=90.0)
    recognizer = Recognizer()
    recognizer.heard = ["I want to talk to an agent"]
    transfer = DialogReply([Prompt("Sure, I'll connect you with an agent now.", "utter_transfer", barge_in=False)],
                           escalation=Escalation("caller_request"))
    backstage = Backstage(queue=store, hold=HoldSettings(announce_every_s=30))
    result = run_call(line, Dialog(greeting(), {"I want to talk to an agent": transfer}), recognizer, seal, backstage)
    return result, line, store.entry(result.queue_entry)


def confirmed_at(line: Line) -> float:
    """When the callback's confirmation began ("Thank you. We will call you back at …")."""
    booked = line.heard.index(line.said("call you back at"))
    return line.heard[booked - 1].start


def test_a_callback_number_keyed_straight_after_the_callback_key_is_booked_without_asking_for_it(
        speech, seal, tmp_path):
    result, line, entry = callback_keyed_ahead(seal, tmp_path, speech, keys_at=[(20.0, "12175550123#")])

    assert (result.queue_outcome, entry.callback_number) == ("callback", "+12175550123")
    assert 20.0 <= confirmed_at(line) <= 20.0 + 4 * FRAME
    assert line.said("call you back at 2 1 7, 5 5 5, 0 1 2 3")
    assert not any("key in the ten digit number" in heard.text for heard in line.heard)  # already given


def test_keys_typed_ahead_of_the_number_question_begin_the_number_the_caller_finishes_after_it(
        speech, seal, tmp_path):
    result, line, entry = callback_keyed_ahead(seal, tmp_path, speech, keys_at=[(20.0, "1217"), (26.0, "5550123#")])

    assert line.said("key in the ten digit number").start < 26.0  # asked: the number was not whole yet
    assert (result.queue_outcome, entry.callback_number) == ("callback", "+12175550123")
    assert 26.0 <= confirmed_at(line) <= 26.0 + 4 * FRAME


def test_after_a_bad_number_a_number_keyed_over_the_re_announcement_is_booked_at_once(speech, seal, tmp_path):
    result, line, entry = callback_keyed_ahead(seal, tmp_path, speech,
                                               keys_at=[(20.0, "1"), (22.0, "5550100#"), (25.0, "12175550123")])

    bad = line.said("not a number we can call")
    again = next(heard for heard in line.heard if "in line" in heard.text and heard.start > bad.start)
    assert again.start < 25.0 and again.cut and again.end == pytest.approx(25.0, abs=2 * FRAME)  # keyed over it
    asked = [heard for heard in line.heard if "key in the ten digit number" in heard.text]
    assert len(asked) == 1 and asked[0].start < bad.start  # asked once, for the first number only
    assert (result.queue_outcome, entry.callback_number) == ("callback", "+12175550123")
    assert 25.0 <= confirmed_at(line) <= 25.0 + 4 * FRAME
