"""dialogs/voice.yml: what each prompt expects, endpointing timings and the bot's voice."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from ivr.dialog.frustration import FrustrationSettings
from ivr.events import Expectation

# "question": the prompt is no question of its own ("take your time"): the answer expected is the last question's.
KINDS = ("free", "digits", "yes_no", "amount", "question")
PROMPT_KEYS = {"expects", "length", "barge_in", "secret", "keypad_only", "hints", "no_input_ms", "name"}
HINT_LISTS = ("us_streets",)  # built-in recognizer hints a prompt may name
ENDPOINT_KEYS = {"trailing_silence_ms", "no_input_ms", "max_utterance_ms", "answered_digits_ms", "answered_yes_no_ms",
                 "answered_amount_ms", "answered_free_ms", "answered_free_confidence", "answered_free_intents"}
TTS_KEYS = {"voice", "rate"}
HINT_KEYS = {"intents", "examples_per_intent"}
FRUSTRATION_KEYS = {"threshold", "phrases"}
HOLD_TEXTS = {"announcement", "callback_offer", "ask_number", "callback_confirmed", "bad_number", "connecting",
              "agent_unreachable", "queue_unavailable"}
HOLD_KEYS = {"announce_every_s", "callback_words", "callback_key", *HOLD_TEXTS}
JUNK_KEYS = {"voice_level_dbfs", "silent_reprompts", "prank_turns", "prank_min_confidence"}
SURVEY_KEYS = {"share", "after_agent"}
TOP_KEYS = {"prompts", "endpointing", "tts", "hints", "frustration", "hold", "junk_calls", "survey"}
DEFAULT_HINT_INTENTS = ("pay_bill", "check_balance", "change_address", "request_agent", "goodbye")


class DialogError(ValueError):
    """A dialog file we cannot use; the message is `file:line: problem`."""


@dataclass(frozen=True)
class PromptSetting:
    name: str
    expects: Expectation = Expectation()
    barge_in: bool = True
    no_input_ms: Optional[int] = None
    shown_as: str = ""  # what a supervisor calls it in reports ("card on file?")


@dataclass(frozen=True)
class EndpointSettings:
    trailing_silence_ms: int = 500
    no_input_ms: int = 5000
    max_utterance_ms: int = 15000
    # The silence that ends a turn whose answer is already complete (all the digits, a yes or no, an amount).
    answered_digits_ms: int = 200
    answered_yes_no_ms: int = 200
    answered_amount_ms: int = 250
    # ... and free speech that is a finished sentence the dialog reads as a request at this confidence or more
    answered_free_ms: int = 350
    answered_free_confidence: float = 0.8
    # Only requests end early: "Hi...", "Yes, ...", "422 Maple Avenue ..." usually lead on to more.
    answered_free_intents: tuple[str, ...] = ("pay_bill", "check_balance", "change_address", "request_agent",
                                              "goodbye", "deny", "out_of_scope", "cancel", "repeat", "help", "wait",
                                              "dont_know")

    @property
    def answered_ms(self) -> tuple[tuple[str, int], ...]:
        return (("digits", self.answered_digits_ms), ("yes_no", self.answered_yes_no_ms),
                ("amount", self.answered_amount_ms), ("free", self.answered_free_ms))


@dataclass(frozen=True)
class HoldSettings:
    """What a queued caller hears while waiting for a person (dialogs/voice.yml `hold:`)."""
    announce_every_s: int = 60
    announcement: str = "You are number {position} in line. The wait is about {minutes}."
    callback_offer: str = "To keep your place and have us call you back, say callback, or press 1."
    callback_words: tuple[str, ...] = ("callback", "call back", "call me back")
    callback_key: str = "1"
    ask_number: str = "Please key in the ten digit number we should call, then press pound."
    callback_confirmed: str = "Thank you. We will call you back at {number}, and you keep your place in line. Goodbye."
    bad_number: str = "Sorry, that is not a number we can call."
    connecting: str = "An agent is ready for you now. Connecting you."
    agent_unreachable: str = "I'm sorry, that agent could not be reached. You keep your place in line."
    queue_unavailable: str = "I'm sorry, no agent can take your call right now. Please call back later. Goodbye."


@dataclass(frozen=True)
class JunkSettings:
    """Calls that are no caller's need (dialogs/voice.yml `junk_calls:`): dead air and pranks, ended by the bot."""
    # A frame this loud that the voice detector calls speech means someone is on the line; a line
    # that never carried one (nor a key) is dead air. Phone speech is -35 to -15 dBFS; hiss is under -55.
    voice_level_dbfs: float = -45.0
    silent_reprompts: int = 2  # reprompts on a dead line before "I can't hear anything" and the hang-up
    prank_turns: int = 2  # the prank or flirting turn (with no task asked) that ends the call politely
    # Whisper writes foreign or garbled speech as English words, now and then read as chatter: a transcript
    # it is less sure of than this is "not understood" (and leads to a person), never a prank.
    prank_min_confidence: float = 0.45


def drawn_for_survey(call_id: str, share: float) -> bool:
    """The same call id always draws the same way (a test or a replay knows); share 1 draws every call."""
    point = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big") / 2 ** 64
    return point < share


@dataclass(frozen=True)
class SurveySettings:
    """The satisfaction question after a completed self-service task or an agent's call (voice.yml `survey:`)."""
    share: float = 0.0  # of such calls, the share asked: 0 never, 1 every one (drawn from the call id)
    after_agent: bool = False  # a drawn caller whose agent hangs up first is given back to the bot and asked

    def after_agent_for(self, call_id: str) -> bool:
        """Whether this call, once put through to an agent's phone, comes back to the bot for the survey."""
        return self.after_agent and drawn_for_survey(call_id, self.share)


@dataclass(frozen=True)
class VoiceSettings:
    prompts: dict[str, PromptSetting] = field(default_factory=dict)
    endpointing: EndpointSettings = EndpointSettings()
    tts_voice: str = "en-us"
    tts_rate: int = 165
    phrases: tuple[str, ...] = ()  # what callers say to an open question, from data/nlu.yml
    frustration: FrustrationSettings = FrustrationSettings()
    hold: HoldSettings = HoldSettings()
    junk: JunkSettings = JunkSettings()
    survey: SurveySettings = SurveySettings()

    def report_names(self) -> dict[str, str]:
        """Prompt -> the name a supervisor reads in reports, where voice.yml gives one."""
        return {name: setting.shown_as for name, setting in self.prompts.items() if setting.shown_as}

    def prompt(self, name: str) -> PromptSetting:
        setting = self.prompts.get(name) or PromptSetting(name)
        if setting.expects.kind != "free" or setting.expects.phrases or not self.phrases:
            return setting
        return replace(setting, expects=replace(setting.expects, phrases=self.phrases))


def load_yaml(path: Path) -> Any:
    """A YAML file with line numbers kept (ruamel round-trip); syntax errors as DialogError with file:line."""
    try:
        return YAML(typ="rt").load(path.read_text())
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise DialogError(f"{path}:{line}: YAML syntax: {exc.problem or exc.context}") from exc
    except OSError as exc:
        raise DialogError(f"{path}:0: cannot read ({exc.strerror})") from exc


def line_of(mapping: Any, key: Any = None) -> int:
    try:
        return (mapping.lc.key(key)[0] if key is not None else mapping.lc.line) + 1
    except (AttributeError, KeyError, TypeError):
        return 0


def problems_in(path: Path, data: Any) -> list[tuple[int, str]]:
    """Every problem of a parsed voice.yml, as (line, message)."""
    found: list[tuple[int, str]] = []
    if data is None:
        return found
    if not isinstance(data, dict):
        return [(1, "voice settings must be a mapping with prompts, endpointing, tts")]
    for key in data:
        if key not in TOP_KEYS:
            found.append((line_of(data, key), f"unknown key {key!r}; expected one of {sorted(TOP_KEYS)}"))
    for name, setting in (data.get("prompts") or {}).items():
        found.extend(_prompt_problems(data["prompts"], name, setting))
    found.extend(_frustration_problems(data.get("frustration") or {}))
    found.extend(_hold_problems(data.get("hold") or {}))
    found.extend(_junk_problems(data.get("junk_calls") or {}))
    found.extend(_survey_problems(data.get("survey") or {}))
    for section, keys in (("endpointing", ENDPOINT_KEYS), ("tts", TTS_KEYS), ("hints", HINT_KEYS)):
        values = data.get(section) or {}
        for key, value in values.items():
            if key not in keys:
                found.append((line_of(values, key), f"{section}: unknown key {key!r}; expected one of {sorted(keys)}"))
            elif key == "intents":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    found.append((line_of(values, key), "hints.intents must be a list of intent names"))
            elif key == "answered_free_intents":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    found.append((line_of(values, key), f"endpointing.{key} must be a list of intent names"))
            elif key == "answered_free_confidence":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                    found.append((line_of(values, key), f"endpointing.{key} must be a number above 0 and at most 1, "
                                                        f"not {value!r}"))
            elif key != "voice" and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                found.append((line_of(values, key), f"{section}.{key} must be a positive whole number, not {value!r}"))
    return found


def _frustration_problems(section: Any) -> list[tuple[int, str]]:
    found = _unknown(section, "frustration", FRUSTRATION_KEYS)
    threshold = section.get("threshold", FrustrationSettings.threshold)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        found.append((line_of(section, "threshold"), f"frustration.threshold must be a number above 0 and at most 1, "
                                                     f"not {threshold!r}"))
    if not _words_list(section.get("phrases", [])):
        found.append((line_of(section, "phrases"), "frustration.phrases must be a list of words or phrases"))
    return found


def _hold_problems(section: Any) -> list[tuple[int, str]]:
    found = _unknown(section, "hold", HOLD_KEYS)
    every = section.get("announce_every_s", 60)
    if isinstance(every, bool) or not isinstance(every, int) or every < 10:
        found.append((line_of(section, "announce_every_s"), f"hold.announce_every_s must be a whole number of "
                                                            f"seconds, 10 or more, not {every!r}"))
    if not _words_list(section.get("callback_words", ["callback"])) or not section.get("callback_words", [1]):
        found.append((line_of(section, "callback_words"), "hold.callback_words must be a non-empty list of words"))
    key = str(section.get("callback_key", "1"))
    if len(key) != 1 or key not in "0123456789*#":
        found.append((line_of(section, "callback_key"), f"hold.callback_key must be one keypad key, not {key!r}"))
    for name in HOLD_TEXTS & set(section):
        if not isinstance(section[name], str) or not section[name].strip():
            found.append((line_of(section, name), f"hold.{name} must be a sentence to say"))
    for name, fields in (("announcement", "{position} {minutes}"), ("callback_confirmed", "{number}")):
        text = section.get(name)
        if isinstance(text, str):
            try:
                text.format(position=1, minutes="two minutes", number="555 0100")
            except (KeyError, IndexError, ValueError):
                found.append((line_of(section, name), f"hold.{name} may only use the fields {fields}"))
    return found


def _junk_problems(section: Any) -> list[tuple[int, str]]:
    found = _unknown(section, "junk_calls", JUNK_KEYS)
    if not isinstance(section, dict):
        return found
    level = section.get("voice_level_dbfs", -45)
    # Under -55 dBFS the endpointer hears nothing at all (Timing.speech_floor_dbfs).
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not -55 <= level <= -10:
        found.append((line_of(section, "voice_level_dbfs"), f"junk_calls.voice_level_dbfs must be a level in dBFS "
                                                            f"from -55 to -10 (speech is about -35 to -15), not {level!r}"))
    sure = section.get("prank_min_confidence", 0.45)
    if isinstance(sure, bool) or not isinstance(sure, (int, float)) or not 0 <= sure <= 1:
        found.append((line_of(section, "prank_min_confidence"), f"junk_calls.prank_min_confidence must be a "
                                                                f"number from 0 to 1, not {sure!r}"))
    for key, most in (("silent_reprompts", 5), ("prank_turns", 5)):
        value = section.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            found.append((line_of(section, key), f"junk_calls.{key} must be a whole number from 1 to {most}, "
                                                 f"not {value!r}"))
    return found


def _survey_problems(section: Any) -> list[tuple[int, str]]:
    found = _unknown(section, "survey", SURVEY_KEYS)
    if not isinstance(section, dict):
        return found
    share = section.get("share", 0.0)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        found.append((line_of(section, "share"), f"survey.share must be a number from 0 (never ask) to 1 (ask "
                                                 f"every caller), not {share!r}"))
    after_agent = section.get("after_agent", False)
    if not isinstance(after_agent, bool):
        found.append((line_of(section, "after_agent"), f"survey.after_agent must be true (also ask after an agent's "
                                                       f"call) or false, not {after_agent!r}"))
    return found


def _unknown(section: Any, name: str, keys: set[str]) -> list[tuple[int, str]]:
    if not isinstance(section, dict):
        return [(0, f"{name} must be a mapping")]
    return [(line_of(section, key), f"{name}: unknown key {key!r}; expected one of {sorted(keys)}")
            for key in section if key not in keys]


def _words_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def _prompt_problems(prompts: Any, name: str, setting: Any) -> list[tuple[int, str]]:
    line = line_of(prompts, name)
    if not isinstance(setting, dict):
        return [(line, f"prompt {name}: expected a mapping like {{expects: digits, length: 8}}")]
    found = [(line, f"prompt {name}: unknown key {k!r}; expected one of {sorted(PROMPT_KEYS)}")
             for k in setting if k not in PROMPT_KEYS]
    kind = setting.get("expects", "free")
    if kind not in KINDS:
        found.append((line, f"prompt {name}: expects {kind!r} is not one of {', '.join(KINDS)}"))
    length = setting.get("length")
    if length is not None and (kind != "digits" or not isinstance(length, int) or isinstance(length, bool) or length <= 0):
        found.append((line, f"prompt {name}: length must be a positive whole number, and only with expects: digits"))
    for flag in ("barge_in", "secret", "keypad_only"):
        if not isinstance(setting.get(flag, flag == "barge_in"), bool):
            found.append((line, f"prompt {name}: {flag} must be true or false"))
    if "name" in setting and (not isinstance(setting["name"], str) or not setting["name"].strip()):
        found.append((line, f"prompt {name}: name must be the words a supervisor reads in reports"))
    patience = setting.get("no_input_ms")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1000):
        found.append((line, f"prompt {name}: no_input_ms must be a whole number of milliseconds, 1000 or more"))
    if setting.get("hints", HINT_LISTS[0]) not in HINT_LISTS:
        found.append((line, f"prompt {name}: hints {setting.get('hints')!r} is not one of {', '.join(HINT_LISTS)}"))
    return found


def load_voice_settings(dialogs_dir: Path) -> VoiceSettings:
    path = dialogs_dir / "voice.yml"
    if not path.exists():
        return VoiceSettings()
    data = load_yaml(path) or {}
    problems = problems_in(path, data)
    if problems:
        raise DialogError("\n".join(f"{path}:{line}: {message}" for line, message in problems))
    prompts = {name: _prompt_setting(name, s) for name, s in (data.get("prompts") or {}).items()}
    tts, hints = data.get("tts") or {}, data.get("hints") or {}
    phrases = caller_phrases(dialogs_dir / "data", tuple(hints.get("intents", DEFAULT_HINT_INTENTS)),
                             int(hints.get("examples_per_intent", 2)))
    endpointing = dict(data.get("endpointing") or {})
    if "answered_free_intents" in endpointing:
        endpointing["answered_free_intents"] = tuple(endpointing["answered_free_intents"])
    return VoiceSettings(prompts, EndpointSettings(**endpointing),
                         str(tts.get("voice", "en-us")), int(tts.get("rate", 165)), phrases,
                         _frustration(data.get("frustration") or {}), _hold(data.get("hold") or {}),
                         JunkSettings(**dict(data.get("junk_calls") or {})),
                         _survey(data.get("survey") or {}))


def _survey(section: dict) -> SurveySettings:
    return SurveySettings(float(section.get("share", 0.0)), bool(section.get("after_agent", False)))


def _frustration(section: dict) -> FrustrationSettings:
    return FrustrationSettings(float(section.get("threshold", FrustrationSettings.threshold)),
                               tuple(p.lower().strip() for p in section.get("phrases", [])))


def _hold(section: dict) -> HoldSettings:
    values = {k: v for k, v in section.items() if k in HOLD_KEYS}
    if "callback_words" in values:
        values["callback_words"] = tuple(w.lower().strip() for w in values["callback_words"])
    if "callback_key" in values:
        values["callback_key"] = str(values["callback_key"])
    return HoldSettings(**values)


def _prompt_setting(name: str, setting: dict) -> PromptSetting:
    phrases: tuple[str, ...] = ()
    if setting.get("hints") == "us_streets":
        from ivr.actions.streets import street_hints
        phrases = tuple(street_hints())
    expects = Expectation(setting.get("expects", "free"), setting.get("length"), phrases,
                          bool(setting.get("secret", False)), bool(setting.get("keypad_only", False)))
    return PromptSetting(name, expects, setting.get("barge_in", True), setting.get("no_input_ms"),
                         str(setting.get("name") or ""))


def caller_phrases(data_dir: Path, intents: tuple[str, ...], per_intent: int) -> tuple[str, ...]:
    """The first NLU examples of the given intents: how callers word an answer to an open question."""
    examples: dict[str, list[str]] = {}
    for path in sorted(data_dir.rglob("*.yml")):
        for block in (load_yaml(path) or {}).get("nlu") or []:
            if isinstance(block, dict) and block.get("intent") in intents:
                lines = str(block.get("examples", "")).splitlines()
                examples.setdefault(block["intent"], []).extend(l.strip()[2:] for l in lines if l.strip().startswith("- "))
    return tuple(e for intent in intents for e in examples.get(intent, [])[:per_intent])
