"""The call's side of the survey after an agent's call, on the virtual clock (tests/call_harness.py): a caller
put through to an agent's phone on a line that gives callers back comes back to the call when the agent hangs
up first, and the dialog is told ("/agent_done"); the record keeps the score with the escalated call and leaves
the time with the agent out of the bot's seconds. A call not drawn for the survey ends at the put-through."""
from __future__ import annotations

import asyncio

import pytest

from call_harness import flite_speech, FRAME, Dialog, Line, Recognizer, Voice, run_call
from ivr.call import AGENT_DONE, Backstage
from ivr.dialog.agent import DialogReply
from ivr.dialog.settings import HoldSettings, SurveySettings
from ivr.events import AudioChunk, Escalation, Expectation, Prompt
from ivr.masking import Seal
from ivr.queue import TAKEN, QueueStore
from ivr.transports.base import Hangup

AGENT_HANGS_UP_AT = 100.0  # on the call's clock; the agent takes the caller at 20 s
RING_S = 2.0  # the agent's phone rings this long before they answer


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return flite_speech(tmp_path_factory.mktemp("ring"), "Hello? Hello? Is anyone there?")


class AgentLine(Line):
    """A line whose agent answers after RING_S and hangs up first at AGENT_HANGS_UP_AT (the line's
    GivesCallersBack: a caller put through to come back is the call's again then). While the caller is with
    the agent, nothing of theirs reaches the call and nothing of the call reaches them, as on the SIP line."""

    def __post_init__(self):
        super().__post_init__()
        self.put_through: list[tuple[float, bool]] = []  # (when, come_back)
        self.hangs_up: list[float] = [AGENT_HANGS_UP_AT]  # each agent's hang-up, in the order they take the caller
        self.talks_in_the_ring = False  # the caller says something ("hello? hello?") while the agent's phone rings
        self.line_drops = False  # the agent's leg is lost on the network instead of hung up
        self.bridged = False

    async def hand_over(self, address: str, come_back: bool = False) -> bool:
        if self.talks_in_the_ring:  # begun just before the agent answers: cut off by the bridge
            self.says_at.append(self.now() + RING_S - 0.8)
        await asyncio.sleep(RING_S)
        self.put_through.append((self.now(), come_back))
        self.bridged = True
        return True

    async def back_from_agent(self) -> bool:
        await asyncio.sleep(self.hangs_up.pop(0) - self.now())
        self.bridged = False
        return self.line_drops

    async def incoming(self):
        async for item in super().incoming():
            if isinstance(item, Hangup) or not self.bridged:
                yield item

    async def play(self, chunk: AudioChunk) -> None:
        if not self.bridged:
            await super().play(chunk)


class FailingDialog(Dialog):
    """The dialog double whose answer to one text fails (Rasa or an action broken)."""

    def __init__(self, *args, fails_on: str):
        super().__init__(*args)
        self.fails_on = fails_on

    async def respond(self, call_id: str, text: str) -> DialogReply:
        reply = await super().respond(call_id, text)
        if text == self.fails_on:
            raise RuntimeError("the dialog broke")
        return reply


class FailingVoice(Voice):
    """The voice double that cannot say one sentence (the text-to-speech engine failed)."""

    def render_sentences(self, text: str):
        if "On a scale" in text:
            raise RuntimeError("the voice broke")
        yield from super().render_sentences(text)


ESCALATED = {"escalation_reason": "caller_request"}  # the dialog's slots once it handed the caller over
QUESTION = Prompt("Thank you for talking with our agent. On a scale of 1 to 5?", "utter_ask_satisfaction_agent",
                  Expectation("digits", 1), barge_in=False)


def call_with_agent(tmp_path, share: float, line=None, dialog=None, answers=None, voice=None, heard=(),
                    before=None):
    """The caller keys 0 for a person at 6 s (keys: the caller's words are not what is tested here) and 4 at the
    survey question, if asked."""
    store = QueueStore(f"sqlite:///{tmp_path / 'queue.db'}")
    for agent in ("ana", "bo"):
        store.add_agent(agent, "correct horse battery", "en,billing", sip_address=f"sip:{agent}@127.0.0.1:5070")
    line = line or AgentLine(AudioChunk(b"", 16000), keys_at=[(6.0, "0#"), (AGENT_HANGS_UP_AT + 8.0, "4")],
                             hangs_up_at=130.0)
    line.voice = voice
    dialog = dialog or Dialog(DialogReply([Prompt("How can I help?", "utter_greet")]), {
        "0": DialogReply([Prompt("Connecting you.", "utter_transfer", barge_in=False)],
                         escalation=Escalation("caller_request"), slots=ESCALATED),
        AGENT_DONE: DialogReply([QUESTION], survey_asked=True),
        "4": DialogReply([Prompt("Thank you for your answer. Goodbye.", "utter_survey_thanks")], ended=True,
                         survey_asked=True, satisfaction=4), **(answers or {})})
    backstage = Backstage(queue=store, hold=HoldSettings(announce_every_s=30),
                          survey=SurveySettings(share=share, after_agent=True))

    def taken(loop):
        loop.call_at(20.0, lambda: (store.set_agent_state("ana", "available"), store.take_next("ana")))
        if before:
            before(loop, store)

    recognizer = Recognizer()
    recognizer.heard = list(heard)  # what the caller says, in order
    return run_call(line, dialog, recognizer, Seal(tmp_path), backstage, before=taken), line, dialog


def test_a_drawn_caller_whose_agent_hangs_up_first_is_asked_and_their_score_kept_with_the_escalated_call(
        tmp_path):
    result, line, dialog = call_with_agent(tmp_path, share=1.0)

    (put_through_at, come_back), = line.put_through
    assert come_back and 20.0 <= put_through_at < 30.0
    assert (pytest.approx(AGENT_HANGS_UP_AT, abs=FRAME), AGENT_DONE) in dialog.received
    assert line.said("Thank you for talking with our agent").start == pytest.approx(AGENT_HANGS_UP_AT, abs=2 * FRAME)
    assert line.said("Thank you for your answer").start == pytest.approx(AGENT_HANGS_UP_AT + 8.0, abs=2 * FRAME)
    assert (result.outcome, result.queue_outcome) == ("escalated", TAKEN)
    assert result.csat == {"asked": True, "score": 4, "by": "keypad", "agent": "ana"}
    with_agent = AGENT_HANGS_UP_AT - put_through_at
    whole = (result.ended_at - result.started_at).total_seconds()
    assert whole > AGENT_HANGS_UP_AT + 8.0  # the record ends when the call does
    assert result.seconds == pytest.approx(whole - with_agent, abs=2 * FRAME)  # the bot's part only


def test_a_call_not_drawn_ends_at_the_put_through_as_before(tmp_path):
    result, line, dialog = call_with_agent(tmp_path, share=0.0)

    (put_through_at, come_back), = line.put_through
    assert not come_back and AGENT_DONE not in [text for _, text in dialog.received]
    assert result.seconds == pytest.approx(put_through_at, abs=2 * FRAME) and result.csat is None
    assert (result.outcome, result.queue_outcome) == ("escalated", TAKEN)


def test_a_caller_who_asks_for_a_person_again_at_the_survey_is_put_through_for_good(tmp_path):
    """"We got cut off, put me back": keyed 9 at the survey, the dialog hands them over again (asked the survey
    already: not to come back), the second agent keeps them, the record ends there and the score names ana."""
    again = DialogReply([Prompt("Connecting you.", "utter_transfer", barge_in=False)],
                        escalation=Escalation("caller_request"), survey_asked=True,
                        slots={**ESCALATED, "survey_asked": True})
    line = AgentLine(AudioChunk(b"", 16000), keys_at=[(6.0, "0#"), (AGENT_HANGS_UP_AT + 8.0, "9")], hangs_up_at=300.0)
    line.hangs_up.append(250.0)  # the second agent, were the caller to come back to the call from them
    bo_takes = (lambda loop, store: loop.call_at(
        AGENT_HANGS_UP_AT + 15.0, lambda: (store.set_agent_state("bo", "available"), store.take_next("bo"))))
    result, line, dialog = call_with_agent(tmp_path, share=1.0, line=line, answers={"9": again}, before=bo_takes)

    (first, came_back), (second, back_again) = line.put_through
    assert came_back and not back_again and second > AGENT_HANGS_UP_AT + 15.0
    assert [text for _, text in dialog.received].count(AGENT_DONE) == 1
    assert result.csat == {"asked": True, "score": None, "by": None, "agent": "ana"}
    assert result.escalation.reason == "caller_request" and result.queue_outcome == TAKEN
    assert result.seconds == pytest.approx(second - (AGENT_HANGS_UP_AT - first), abs=2 * FRAME)


def test_what_the_caller_was_saying_when_put_through_is_no_answer_to_the_survey(tmp_path, speech):
    """"Hello? Hello?" in the ring, cut off by the bridge: not taken as the survey's answer when they come back."""
    line = AgentLine(speech, keys_at=[(6.0, "0#"), (AGENT_HANGS_UP_AT + 8.0, "4")], hangs_up_at=130.0)
    line.talks_in_the_ring = True
    result, line, dialog = call_with_agent(tmp_path, share=1.0, line=line, heard=["hello hello"] * 3)

    after = [text for at, text in dialog.received if at >= AGENT_HANGS_UP_AT - FRAME]
    assert after == [AGENT_DONE, "4"]
    assert result.csat == {"asked": True, "score": 4, "by": "keypad", "agent": "ana"}


def test_a_dialog_failing_after_the_agent_says_goodbye_and_keeps_the_hand_over(tmp_path):
    dialog = FailingDialog(DialogReply([Prompt("How can I help?", "utter_greet")]), {
        "0": DialogReply([Prompt("Connecting you.", "utter_transfer", barge_in=False)],
                         escalation=Escalation("caller_request"), slots=ESCALATED)}, fails_on=AGENT_DONE)
    result, line, dialog = call_with_agent(tmp_path, share=1.0, dialog=dialog)

    assert line.said("Thank you for calling.").start == pytest.approx(AGENT_HANGS_UP_AT, abs=2 * FRAME)
    assert not [heard for heard in line.heard if "connect you" in heard.text]  # not queued a second time
    assert len(line.put_through) == 1 and [text for _, text in dialog.received].count(AGENT_DONE) == 1
    assert (result.outcome, result.escalation.reason, result.queue_outcome) == ("escalated", "caller_request", TAKEN)
    assert result.csat is None
    assert (result.ended_at - result.started_at).total_seconds() < AGENT_HANGS_UP_AT + 8.0  # ended, not hung up on


def test_a_voice_failing_after_the_agent_fails_the_call_at_once_instead_of_leaving_dead_air(tmp_path):
    """The switchboard logs a failed call and the line hangs up: the caller is not left listening to nothing."""
    with pytest.raises(RuntimeError, match="the voice broke"):
        call_with_agent(tmp_path, share=1.0, voice=FailingVoice())


def test_a_caller_whose_agents_line_drops_is_told_so_and_not_asked_about_the_call(tmp_path):
    line = AgentLine(AudioChunk(b"", 16000), keys_at=[(6.0, "0#")], hangs_up_at=130.0)
    line.line_drops = True
    result, line, dialog = call_with_agent(tmp_path, share=1.0, line=line)

    assert line.said("the line to your agent dropped").start == pytest.approx(AGENT_HANGS_UP_AT, abs=2 * FRAME)
    assert AGENT_DONE not in [text for _, text in dialog.received] and result.csat is None
    assert (result.outcome, result.escalation.reason, result.queue_outcome) == ("escalated", "caller_request", TAKEN)
    assert (result.ended_at - result.started_at).total_seconds() < AGENT_HANGS_UP_AT + 10.0


def test_a_caller_handed_over_by_the_call_itself_is_not_taken_back_only_to_hear_goodbye(tmp_path):
    """The dialog failed and the call apologised and transferred (no escalation_reason in the dialog's slots):
    the dialog would not ask this caller, so the call keeps them with their agent (one rule for both)."""
    dialog = FailingDialog(DialogReply([Prompt("How can I help?", "utter_greet")]), {}, fails_on="0")
    result, line, dialog = call_with_agent(tmp_path, share=1.0, dialog=dialog)

    (put_through_at, come_back), = line.put_through
    assert not come_back and AGENT_DONE not in [text for _, text in dialog.received]
    assert result.escalation.reason == "dialog_failure"
    assert result.seconds == pytest.approx(put_through_at, abs=2 * FRAME)
