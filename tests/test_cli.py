"""The `ivr` command as a user runs it: real caller files, real models, clear errors for bad input."""
import json
import shutil
import wave

import numpy as np

from conftest import ROOT, ivr_command, voiced_seconds


def test_call_with_caller_files_answers_and_records_both_sides(tmp_path, trained_model):
    """A 44.1 kHz stereo caller file is resampled, heard, answered; the recording has caller left, bot right."""
    import subprocess
    mono = tmp_path / "mono.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", "I would like to speak to an agent please", "-o", str(mono)], check=True)
    stereo = tmp_path / "caller.wav"
    subprocess.run(["sox", str(mono), "-r", "44100", "-c", "2", str(stereo)], check=True)
    record = tmp_path / "call.wav"

    done = ivr_command("call", "--caller-audio", stereo, "--json", "--record", record)
    assert done.returncode == 0, done.stderr
    call = json.loads(done.stdout)
    assert call["outcome"] == "escalated" and call["escalation"]["reason"] == "caller_request"
    assert "agent" in call["turns"][0]["heard"].lower() and call["turns"][0]["intent"] == "request_agent"
    assert call["greeting"] and "agent" in " ".join(call["turns"][0]["bot"]).lower()

    with wave.open(str(record)) as wav:
        assert wav.getnchannels() == 2
        rate = wav.getframerate()
        frames = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    caller, bot = frames[:, 0].tobytes(), frames[:, 1].tobytes()
    assert voiced_seconds(caller, rate) > 1.0  # the caller's request
    assert voiced_seconds(bot, rate) > 3.0  # the greeting and the transfer prompt
    first_bot = np.argmax(np.abs(frames[:, 1]) > 500) / rate
    first_caller = np.argmax(np.abs(frames[:, 0]) > 500) / rate
    assert first_bot < first_caller  # the bot greets before the caller speaks
    # The call lasts as long as its audio (the recording), not the time its processing took.
    assert call["channel"] == "files" and abs(call["seconds"] - len(frames) / rate) < 0.5, (call["seconds"], len(frames) / rate)


def test_a_caller_file_on_the_phone_channel_is_recorded_as_such(tmp_path, trained_model):
    import subprocess
    wav = tmp_path / "caller.wav"
    subprocess.run(["flite", "-voice", "kal", "-t", "Representative please", "-o", str(wav)], check=True)
    done = ivr_command("call", "--caller-audio", wav, "--channel", "phone", "--json")
    assert done.returncode == 0, done.stderr
    call = json.loads(done.stdout)
    assert call["channel"] == "files-phone" and call["outcome"] == "escalated"
    shown = ivr_command("calls", "show", call["call_id"])
    assert "files-phone" in shown.stdout, shown.stdout


def test_a_corrupt_caller_file_is_refused_before_anything_loads(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEnot really")
    done = ivr_command("call", "--caller-audio", bad, timeout=60)
    assert done.returncode == 2
    assert "broken.wav" in done.stderr and "WAV" in done.stderr and "Traceback" not in done.stderr


def test_a_missing_dialog_model_says_to_train(tmp_path):
    wav = tmp_path / "a.wav"
    shutil.copy(ROOT / "tests" / "data" / "silence_1s.wav", wav)
    done = ivr_command("call", "--caller-audio", wav, env={"IVR_MODELS": str(tmp_path / "no-models")})
    assert done.returncode == 2 and "ivr train" in done.stderr and "Traceback" not in done.stderr


def test_a_missing_vosk_model_says_what_to_run(tmp_path):
    wav = tmp_path / "a.wav"
    shutil.copy(ROOT / "tests" / "data" / "silence_1s.wav", wav)
    done = ivr_command("call", "--caller-audio", wav, "--vosk-model", tmp_path / "nowhere")
    assert done.returncode == 2 and "ivr models pull" in done.stderr and "nowhere" in done.stderr


def test_a_broken_dialog_file_is_reported_with_file_and_line(tmp_path):
    dialogs = tmp_path / "dialogs"
    shutil.copytree(ROOT / "dialogs", dialogs)
    nlu = dialogs / "data" / "nlu.yml"
    lines = nlu.read_text().splitlines()
    lines.insert(5, "  - intent: greet: broken")
    nlu.write_text("\n".join(lines) + "\n")
    done = ivr_command("dialogs", "check", env={"IVR_DIALOGS": str(dialogs)}, timeout=120)
    assert done.returncode == 1
    assert "nlu.yml:6" in done.stdout, done.stdout
    refused = ivr_command("train", env={"IVR_DIALOGS": str(dialogs), "IVR_MODELS": str(tmp_path / "m")}, timeout=120)
    assert refused.returncode != 0 and "nlu.yml:6" in (refused.stdout + refused.stderr)
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_simulate_reports_json_and_fails_on_a_failed_expectation(tmp_path, trained_model):
    scenario = tmp_path / "wrong.yml"
    scenario.write_text(
        'name: expects the wrong intent\n'
        'caller: {voice: "flite:slt", channel: wideband}\n'
        'turns:\n'
        '  - say: "Can I talk to an agent?"\n'
        '    expect: {intent: pay_bill}\n')
    right = ROOT / "tests" / "scenarios" / "agent_request_flite.yml"
    done = ivr_command("simulate", right, scenario, "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] == 1 and report["failed"] == 1
    failed = next(s for s in report["scenarios"] if not s["passed"])
    assert failed["outcome"] == "escalated" and "pay_bill" in failed["failures"][0]
    assert set(failed["turns"][0]) >= {"said", "heard", "intent", "confidence", "bot"}


def test_simulate_resets_the_demo_accounts_so_a_payment_scenario_passes_every_time(tmp_path, trained_model):
    """The scenario pays the whole $120.75: run twice without a reset, the second caller would hear $0.00."""
    paying = ROOT / "tests" / "scenarios" / "pay_bill_espeak.yml"
    done = ivr_command("simulate", paying, paying, "--json", env={"IVR_VAR": str(tmp_path / "var")})
    report = json.loads(done.stdout or "{}")
    assert done.returncode == 0 and report["passed"] == 2, (done.stderr[-2000:], report)


def test_an_unknown_caller_voice_is_named_with_the_installed_ones(tmp_path):
    scenario = tmp_path / "voice.yml"
    scenario.write_text('name: x\ncaller: {voice: "flite:nobody"}\nturns:\n  - say: "hi"\n')
    done = ivr_command("simulate", scenario, timeout=60)
    assert done.returncode == 2 and "nobody" in done.stderr and "slt" in done.stderr


def test_chat_runs_the_same_dialog_by_typing(trained_model):
    done = ivr_command("chat", input="i want to pay my bill\n48151623\n", timeout=180)
    assert done.returncode == 0, done.stderr
    assert "account number" in done.stdout and "4 8 1 5 1 6 2 3" in done.stdout


def test_models_list_says_which_recognizer_runs(tmp_path):
    done = ivr_command("models", "list", env={"IVR_MODELS": str(tmp_path)}, timeout=60)
    assert done.returncode == 0
    assert "in use: whisper tiny.en" in done.stdout and "ivr models pull" in done.stdout


def test_models_pull_without_a_network_fails_fast_with_one_line(tmp_path):
    """The English Vosk model lives outside the package registries: offline, pull says so and installs nothing."""
    done = ivr_command("models", "pull", "--timeout", "5", env={"IVR_MODELS": str(tmp_path)}, timeout=60)
    if done.returncode == 0:  # a machine with a network really installs it
        assert (tmp_path / "vosk" / "am").is_dir()
        return
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "cannot download" in done.stderr and "Whisper" in done.stderr
    assert not (tmp_path / "vosk").exists()


def test_no_sound_device_is_said_at_once_not_after_loading(tmp_path):
    done = ivr_command("call", env={"PULSE_SERVER": f"unix:{tmp_path}/no-such-server"}, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "no usable input device" in done.stderr and "Devices:" in done.stderr
    assert "ASR:" not in done.stderr  # said before the models load (loading announces the recognizer)
