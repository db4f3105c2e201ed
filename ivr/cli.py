"""The `ivr` command: parses arguments, calls into the package, prints."""
from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # also silences Rasa's progress bars
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")  # Rasa 3.6 uses the SQLAlchemy 1.4 API on purpose

from ivr.config import Settings, add_engine_flags  # noqa: E402
from ivr.errors import UserError  # noqa: E402

log = logging.getLogger("ivr")


# Each area adds its own commands: register(commands, bench_commands) on the argparse subparsers.
AREA_COMMANDS = ("ivr.queue.commands", "ivr.serve.commands", "ivr.cluster.commands", "ivr.records.commands",
                 "ivr.tools.commands")


def main(argv: Optional[list[str]] = None) -> int:
    args = parser().parse_args(argv)
    if not args.verbose:
        warnings.simplefilter("ignore")  # Rasa, TensorFlow and friends warn about their own internals
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # Set on our own logger too: loading the bot imports numpy.distutils, which resets the root logger to
    # WARNING through setuptools, and `ivr -v serve` would lose every INFO line of ours after the bot loads.
    log.setLevel(logging.INFO if args.verbose else logging.WARNING)
    from ivr import logs
    logs.install()  # before anything logs: no record of this process is written unmasked (ivr serve too)
    for noisy in ("rasa", "tensorflow", "absl", "sanic", "asyncio", "faster_whisper", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, _hang_up)  # a terminated call cleans up like Ctrl-C (the action server too)
    settings = Settings.from_env(vosk_model=getattr(args, "vosk_model", None),
                                 whisper_model=getattr(args, "whisper_model", None))
    try:
        return args.run(args, settings) or 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line for what the user can fix
        if not _is_user_error(exc):
            raise
        print(f"ivr: {exc}", file=sys.stderr)
        return 2


def _hang_up(signum, frame) -> None:
    raise KeyboardInterrupt


def _is_user_error(exc: Exception) -> bool:
    from ivr.asr.base import RecognitionError
    from ivr.audio.pcm import BadAudio
    from ivr.dialog.settings import DialogError
    from ivr.transports.microphone import DeviceError
    from ivr.accounts import AccountsError
    from ivr.queue.model import QueueError
    from ivr.records import RecordsError
    return isinstance(exc, (UserError, RecognitionError, BadAudio, DialogError, DeviceError,
                            AccountsError, QueueError, RecordsError, FileNotFoundError))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ivr", description="An offline speech IVR: speak to the bot, simulate callers, "
                                                          "train and check dialogs.")
    top.add_argument("-v", "--verbose", action="store_true", help="log what happens (to stderr)")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    call = commands.add_parser("call", help="a live call on the microphone, or caller WAV files with --caller-audio")
    add_engine_flags(call)
    call.add_argument("--caller-audio", nargs="+", type=Path, metavar="WAV",
                      help="one WAV per caller utterance, each played when the bot waits for an answer")
    call.add_argument("--channel", choices=("wideband", "phone"), default="wideband",
                      help="with --caller-audio: the line the caller is on (phone = 8 kHz mu-law)")
    call.add_argument("--json", action="store_true", help="print the call as one JSON object")
    call.add_argument("--record", type=Path, metavar="WAV", help="write a two-channel recording (caller, bot)")
    call.add_argument("--input-device", help="sounddevice input device (number or name)")
    call.add_argument("--output-device", help="sounddevice output device (number or name)")
    call.add_argument("--no-echo-cancel", action="store_true",
                      help="on a headset: skip cancelling the bot's voice leaking from speaker to microphone")
    call.set_defaults(run=_call)

    chat = commands.add_parser("chat", help="the same dialog by typing")
    chat.add_argument("--caller-number", metavar="NUMBER",
                      help="the number the typed caller calls from (offered as their callback number on hold)")
    chat.set_defaults(run=_chat)

    train = commands.add_parser("train", help="train the dialog model into models/ (skipped when nothing changed)")
    train.add_argument("--force", action="store_true")
    train.set_defaults(run=_train)

    dialogs = commands.add_parser("dialogs", help="dialog files")
    dialogs_commands = dialogs.add_subparsers(dest="dialogs_command", required=True, metavar="ACTION")
    dialogs_commands.add_parser("check", help="validate dialogs/ and print file:line: problem").set_defaults(run=_check)

    models = commands.add_parser("models", help="speech models")
    models_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    pull = models_commands.add_parser("pull", help="download the English Vosk model (needs a network)")
    pull.add_argument("--timeout", type=float, default=60.0)
    pull.set_defaults(run=_pull)
    models_commands.add_parser("list", help="what is installed and which engine runs").set_defaults(run=_list)

    db = commands.add_parser("db", help="the accounts database (SQLite under var/, or IVR_DATABASE_URL)")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("seed", help="reset the demo accounts 48151623, 27182818 and 31415926").set_defaults(run=_db_seed)

    bench = commands.add_parser("bench", help="benchmarks that print figures")
    bench_commands = bench.add_subparsers(dest="bench_command", required=True, metavar="WHAT")
    for area in AREA_COMMANDS:
        importlib.import_module(area).register(commands, bench_commands)
    return top


async def _with_bot(settings: Settings, work):
    from ivr.bot import Bot
    bot = await Bot.load(settings)
    try:
        return await work(bot)
    finally:
        await bot.close()


def _call(args, settings: Settings) -> int:
    from ivr.audio.pcm import PHONE_RATE, WIDEBAND_RATE, phone_channel, read_wav
    from ivr.audio.recording import Recording
    from ivr.dialog.settings import load_voice_settings
    from ivr.transports.files import CallerFiles

    if args.caller_audio:
        items = [read_wav(p) for p in args.caller_audio]  # bad files are refused before anything loads
        if args.channel == "phone":
            items = [phone_channel(i) for i in items]
    rate = PHONE_RATE if args.caller_audio and args.channel == "phone" else WIDEBAND_RATE
    no_input = load_voice_settings(settings.dialogs_dir).endpointing.no_input_ms / 1000

    async def call():
        if args.caller_audio:
            transport = CallerFiles(items, rate, wait_limit=no_input + 1.5)
        else:
            from ivr.transports.microphone import Microphone
            transport = Microphone(_device(args.input_device), _device(args.output_device),
                                   echo_cancel=not args.no_echo_cancel)
            transport.open()  # a missing device is said before the models load
        recording = Recording(rate) if args.record else None

        async def work(bot):
            channel = ("files-phone" if args.channel == "phone" else "files") if args.caller_audio else "microphone"
            call = bot.call(transport, channel, recording=recording,
                            scripted=[str(p) for p in args.caller_audio] if args.caller_audio else None)
            if not args.json:
                call.on_turn = _print_turn
            if not args.caller_audio:
                _hang_up_on_signals(transport)
                print("Listening. Speak to the bot; Ctrl-C hangs up.", file=sys.stderr, flush=True)
            return await call.run()

        try:
            result = await _with_bot(settings, work)
        finally:
            await transport.close()
        if recording:
            recording.save(args.record)
        return result

    result = asyncio.run(call())
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        queued = f"; queue entry {result.queue_entry}: {result.queue_outcome}" if result.queue_entry else ""
        print(f"call {result.call_id}: {result.outcome}" + (f" ({result.escalation.reason})" if result.escalation else "")
              + queued)
    return 0


def _hang_up_on_signals(transport) -> None:
    """Ctrl-C or SIGTERM hangs up like a caller (a queued caller is marked abandoned, the call recorded);
    a second one stops at once."""
    loop = asyncio.get_running_loop()

    def hang_up() -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        transport.hang_up()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, hang_up)


def _device(value: Optional[str]):
    return int(value) if value is not None and value.isdigit() else value


def _print_turn(turn) -> None:
    if turn.heard:
        print(f"caller: {turn.heard}", flush=True)
    for text in turn.bot:
        print(f"bot:    {text}", flush=True)


def _chat(args, settings: Settings) -> int:
    """The dialog by typing, as a call of its own: the same understanding as the voice path, and a
    caller handed to a person waits in the agents' queue here, on the terminal, until taken."""
    from ivr.bot import Bot
    from ivr.transports.typed import TypedLine

    async def chat():
        bot = await Bot.load(settings, speech=False)
        try:
            call = bot.call(TypedLine(), "chat", caller_number=args.caller_number)
            call.on_turn = _print_bot
            print("Type what the caller says; an empty line is silence, 5025# is keyed in, quit hangs up.",
                  file=sys.stderr, flush=True)
            return await call.run()
        finally:
            await bot.close()

    result = asyncio.run(chat())
    queued = f"; queue entry {result.queue_entry}: {result.queue_outcome}" if result.queue_entry else ""
    print(f"call {result.call_id}: {result.outcome}{queued}", file=sys.stderr)
    return 0


def _print_bot(turn) -> None:
    for text in turn.bot:
        print(f"bot: {text}", flush=True)


def _train(args, settings: Settings) -> int:
    from ivr.dialog.training import train
    path = train(settings.dialogs_dir, settings.models_dir, force=args.force)
    print(f"model: {path}")
    return 0


def _check(args, settings: Settings) -> int:
    from ivr.dialog.check import check_dialogs
    found = check_dialogs(settings.dialogs_dir)
    for problem in found:
        print(problem)
    errors = [p for p in found if not p.warning]
    print(f"{len(errors)} problem(s) in {settings.dialogs_dir}" if errors else f"{settings.dialogs_dir}: OK")
    return 1 if errors else 0


def _pull(args, settings: Settings) -> int:
    from ivr.asr.models import pull_vosk_model
    print(f"installed: {pull_vosk_model(settings.models_dir, timeout=args.timeout)}")
    return 0


def _list(args, settings: Settings) -> int:
    from ivr.asr.models import list_models
    for line in list_models(settings.models_dir):
        print(line)
    return 0


def _db_seed(args, settings: Settings) -> int:
    from ivr.accounts import seed_demo

    accounts = seed_demo(settings)
    print(f"ivr db seed: {len(accounts)} demo accounts reset ({', '.join(a.number for a in accounts)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
