import os
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def speak(tmp_path_factory):
    """Caller speech from espeak-ng as 16-bit mono PCM at `rate` (real audio, made on the spot)."""
    from ivr.audio.pcm import read_wav

    folder = tmp_path_factory.mktemp("speech")

    def render(text: str, rate: int = 16000, voice: str = "en-us"):
        path = folder / f"{abs(hash((text, voice)))}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
        return read_wav(path, rate)

    return render


@pytest.fixture(scope="session")
def trained_model():
    """The dialog model `make setup` trains; trained here (skipped when unchanged) if a test runs first."""
    from ivr.config import Settings
    from ivr.dialog.training import train

    settings = Settings.from_env()
    return train(settings.dialogs_dir, settings.models_dir)


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory):
    """The product's var/ for this test session: its own accounts database, secrets, logs.

    Set before the bot loads: the dialog's actions read their settings from the environment.
    """
    from ivr.accounts import seed_demo
    from ivr.config import Settings

    folder = tmp_path_factory.mktemp("var")
    os.environ["IVR_VAR"] = str(folder)
    seed_demo(Settings.from_env())
    return folder


@pytest.fixture
def accounts(var_dir):
    """The demo accounts as `make setup` leaves them, reset for this test; the open store."""
    from ivr.accounts import open_store, seed_demo
    from ivr.config import Settings

    seed_demo(Settings.from_env())
    with open_store(Settings.from_env()) as store:
        yield store


@pytest.fixture(scope="session")
def event_loop_for_bot():
    import asyncio

    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def bot(trained_model, event_loop_for_bot, var_dir):
    """The whole bot, loaded once: real Rasa, real recognizer, real pyttsx3."""
    from ivr.bot import Bot
    from ivr.config import Settings

    loaded = event_loop_for_bot.run_until_complete(Bot.load(Settings.from_env()))
    yield loaded
    event_loop_for_bot.run_until_complete(loaded.close())


def ivr_command(*args, env=None, timeout=300, **kwargs):
    """Run the installed `ivr` command as a user would."""
    import sys

    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([str(Path(sys.executable).parent / "ivr"), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=ROOT, **kwargs)


def voiced_seconds(pcm: bytes, rate: int) -> float:
    """How much of a 16-bit mono track a voice-activity detector calls speech: 'is this speech?'."""
    import webrtcvad

    vad, frame = webrtcvad.Vad(2), int(rate * 0.02) * 2
    return sum(vad.is_speech(pcm[i:i + frame], rate) for i in range(0, len(pcm) - frame, frame)) * 0.02


def until_the_bot_has_spoken(hearing, rate: int, quiet: float = 1.0, timeout: float = 40, who: str = "") -> float:
    """Listens like a caller to a recording that grows as the call goes (`hearing()`: its 16-bit PCM so far):
    once the bot has said something and then been quiet for `quiet` seconds, its prompt is over. Returns
    where in the recording it ended. A caller who waits for the prompt, whatever the machine's speed,
    rather than speaking at a guessed second."""
    import time

    deadline, start, window = time.monotonic() + timeout, len(hearing()), int(quiet * rate) * 2
    while time.monotonic() < deadline:
        pcm = hearing()[start:]
        tail, spoken = pcm[-window:], pcm[:-window]
        if len(tail) == window and voiced_seconds(spoken, rate) > 0.5 and voiced_seconds(tail, rate) < 0.1:
            return (start + len(spoken)) / 2 / rate
        time.sleep(0.1)
    raise TimeoutError(f"{who}: the bot did not finish a prompt within {timeout} s; "
                       f"heard {voiced_seconds(hearing()[start:], rate):.1f} s of speech")


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL server for the whole test session (tests/postgres.py)."""
    from postgres import PostgresUnavailable, start_postgres

    try:
        server = start_postgres()
    except PostgresUnavailable as error:
        pytest.fail(f"these tests need a PostgreSQL server and none could be started: {error}", pytrace=False)
    yield server
    server.stop()


def fresh_database(request, tmp_path, sqlite_file: str):
    """A fresh, empty database for one test: `request.param` is sqlite or postgresql (a generator for a fixture)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / sqlite_file}"
        return
    server = request.getfixturevalue("postgres")
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def call(bot, event_loop_for_bot, accounts):
    """Runs a scenario file from tests/scenarios through the whole bot; fails with the turns if it does not pass."""
    from ivr.tools.simulate import load_scenario, run_scenario

    def run(name: str) -> dict:
        result = event_loop_for_bot.run_until_complete(run_scenario(bot, load_scenario(ROOT / "tests" / "scenarios" / name)))
        turns = "\n".join(f"  said {t['said']!r} heard {t['heard']!r} -> {t['intent']} / bot: {t['bot']!r}"
                          for t in result["turns"])
        assert result["passed"], f"{result['failures']}\n{turns}"
        return result
    return run
