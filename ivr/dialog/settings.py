"""dialogs/voice.yml: what each prompt expects, endpointing timings and the bot's voice."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from ivr.events import Expectation

KINDS = ("free", "digits", "yes_no", "amount")
PROMPT_KEYS = {"expects", "length", "barge_in", "secret", "keypad_only", "hints"}
HINT_LISTS = ("us_streets",)  # built-in recognizer hints a prompt may name
ENDPOINT_KEYS = {"trailing_silence_ms", "no_input_ms", "max_utterance_ms"}
TTS_KEYS = {"voice", "rate"}
HINT_KEYS = {"intents", "examples_per_intent"}
TOP_KEYS = {"prompts", "endpointing", "tts", "hints"}
DEFAULT_HINT_INTENTS = ("pay_bill", "check_balance", "change_address", "request_agent", "goodbye")


class DialogError(ValueError):
    """A dialog file we cannot use; the message is `file:line: problem`."""


@dataclass(frozen=True)
class PromptSetting:
    name: str
    expects: Expectation = Expectation()
    barge_in: bool = True


@dataclass(frozen=True)
class EndpointSettings:
    trailing_silence_ms: int = 500
    no_input_ms: int = 5000
    max_utterance_ms: int = 15000


@dataclass(frozen=True)
class VoiceSettings:
    prompts: dict[str, PromptSetting] = field(default_factory=dict)
    endpointing: EndpointSettings = EndpointSettings()
    tts_voice: str = "en-us"
    tts_rate: int = 165
    phrases: tuple[str, ...] = ()  # what callers say to an open question, from data/nlu.yml

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
    for section, keys in (("endpointing", ENDPOINT_KEYS), ("tts", TTS_KEYS), ("hints", HINT_KEYS)):
        values = data.get(section) or {}
        for key, value in values.items():
            if key not in keys:
                found.append((line_of(values, key), f"{section}: unknown key {key!r}; expected one of {sorted(keys)}"))
            elif key == "intents":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    found.append((line_of(values, key), "hints.intents must be a list of intent names"))
            elif key != "voice" and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                found.append((line_of(values, key), f"{section}.{key} must be a positive whole number, not {value!r}"))
    return found


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
    return VoiceSettings(prompts, EndpointSettings(**dict(data.get("endpointing") or {})),
                         str(tts.get("voice", "en-us")), int(tts.get("rate", 165)), phrases)


def _prompt_setting(name: str, setting: dict) -> PromptSetting:
    phrases: tuple[str, ...] = ()
    if setting.get("hints") == "us_streets":
        from ivr.actions.streets import street_hints
        phrases = tuple(street_hints())
    expects = Expectation(setting.get("expects", "free"), setting.get("length"), phrases,
                          bool(setting.get("secret", False)), bool(setting.get("keypad_only", False)))
    return PromptSetting(name, expects, setting.get("barge_in", True))


def caller_phrases(data_dir: Path, intents: tuple[str, ...], per_intent: int) -> tuple[str, ...]:
    """The first NLU examples of the given intents: how callers word an answer to an open question."""
    examples: dict[str, list[str]] = {}
    for path in sorted(data_dir.rglob("*.yml")):
        for block in (load_yaml(path) or {}).get("nlu") or []:
            if isinstance(block, dict) and block.get("intent") in intents:
                lines = str(block.get("examples", "")).splitlines()
                examples.setdefault(block["intent"], []).extend(l.strip()[2:] for l in lines if l.strip().startswith("- "))
    return tuple(e for intent in intents for e in examples.get(intent, [])[:per_intent])
