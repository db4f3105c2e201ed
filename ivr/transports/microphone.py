"""The local microphone and speaker, through sounddevice.

The device callbacks never block: input is handed to the event loop with one thread-safe call,
output is taken from a buffer the call fills (and barge-in empties).
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import AsyncIterator, Optional, Union

import numpy as np

from ivr.audio.echo import EchoCanceller
from ivr.audio.pcm import WIDEBAND_RATE, StreamResampler, resample
from ivr.events import AudioChunk
from ivr.transports.base import Hangup, Incoming

BLOCK_SECONDS = 0.02


class DeviceError(RuntimeError):
    """No usable audio device; the message says which and what to try."""


def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # PortAudio library missing
        raise DeviceError(f"sounddevice cannot load PortAudio ({exc}); install it: apt-get install libportaudio2") from exc
    return sounddevice


class Speaker:
    """Bot audio out: a buffer drained by the device callback."""

    def __init__(self, buffer_lock: threading.Lock):
        self._lock = buffer_lock
        self._pending = bytearray()
        self.idle = threading.Event()
        self.idle.set()

    def push(self, pcm: bytes) -> None:
        with self._lock:
            self._pending += pcm
            self.idle.clear()

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            self.idle.set()

    def take(self, size: int) -> bytes:
        with self._lock:
            out = bytes(self._pending[:size])
            del self._pending[:size]
            if not self._pending:
                self.idle.set()
        return out + bytes(size - len(out))


class Microphone:
    """The live call: `ivr call` on the default (or named) input and output devices."""

    def __init__(self, input_device: Union[int, str, None] = None, output_device: Union[int, str, None] = None,
                 rate: int = WIDEBAND_RATE, echo_cancel: bool = True):
        self.rate = rate
        self._echo = EchoCanceller(rate) if echo_cancel else None
        self._sd = _sounddevice()
        self._input, self._output = input_device, output_device
        self._queue: asyncio.Queue[Optional[AudioChunk]] = asyncio.Queue()
        self._speaker = Speaker(threading.Lock())
        self._started = time.monotonic()
        self._streams: list = []
        self.overflows = 0

    def now(self) -> float:
        return time.monotonic() - self._started

    def _device_rate(self, device, kind: str) -> int:
        try:
            return int(self._sd.query_devices(device, kind)["default_samplerate"])
        except (ValueError, self._sd.PortAudioError) as exc:
            names = ", ".join(str(d["name"]) for d in self._sd.query_devices()) or "none"
            raise DeviceError(f"no usable {kind} device {device if device is not None else '(default)'}: "
                              f"{exc}. Devices: {names}") from exc

    def open(self) -> None:
        """Open capture and playback (a missing device is said here); call from the event loop."""
        loop = asyncio.get_running_loop()
        in_rate, out_rate = self._device_rate(self._input, "input"), self._device_rate(self._output, "output")

        def heard(indata, frames, when, status):  # device thread: hand over and return
            if status.input_overflow:
                self.overflows += 1
            loop.call_soon_threadsafe(arrived, AudioChunk(bytes(indata), in_rate, self.now()))

        arrived = self._arrival(in_rate)
        speaker, out_bytes = self._speaker, 2
        played = self._played_by(out_rate)

        def speak(outdata, frames, when, status):  # device thread: copy out what is buffered
            pcm = speaker.take(frames * out_bytes)
            outdata[:] = np.frombuffer(pcm, dtype="<i2").reshape(-1, 1)
            if played:
                loop.call_soon_threadsafe(played, pcm)

        self._out_rate = out_rate
        try:
            self._streams = [
                self._sd.RawInputStream(samplerate=in_rate, channels=1, dtype="int16", device=self._input,
                                        blocksize=int(in_rate * BLOCK_SECONDS), callback=heard),
                self._sd.OutputStream(samplerate=out_rate, channels=1, dtype="int16", device=self._output,
                                      blocksize=int(out_rate * BLOCK_SECONDS), callback=speak),
            ]
        except self._sd.PortAudioError as exc:
            raise self._device_error(exc) from exc

    def _start(self) -> None:
        """The devices run from when the call starts listening, not while the models load: a device
        starved by the loading underruns, and the echo canceller would have to learn the shifted
        echo again in the caller's first seconds."""
        try:
            for stream in self._streams:
                if not stream.active:
                    stream.start()
        except self._sd.PortAudioError as exc:
            raise self._device_error(exc) from exc

    def _device_error(self, exc: Exception) -> DeviceError:
        return DeviceError(f"cannot open the sound devices (input {self._input or 'default'}, output "
                           f"{self._output or 'default'}): {exc}. Pick others with --input-device/"
                           f"--output-device; `python -m sounddevice` lists them")

    def _played_by(self, out_rate: int):
        """What the speaker played, as the echo canceller's reference (on the event loop)."""
        if self._echo is None:
            return None
        echo, to_call_rate = self._echo, StreamResampler(out_rate, self.rate)
        return lambda pcm: echo.played(to_call_rate(AudioChunk(pcm, out_rate)).pcm)

    def _arrival(self, in_rate: int):
        """Microphone audio as it arrives (on the event loop): at the call's rate, echo removed."""
        to_call_rate = StreamResampler(in_rate, self.rate)

        def arrived(chunk: AudioChunk) -> None:
            chunk = to_call_rate(chunk)
            if self._echo is not None:
                chunk = AudioChunk(self._echo.heard(chunk.pcm), chunk.rate, chunk.timestamp)
            self._queue.put_nowait(chunk)
        return arrived

    async def incoming(self) -> AsyncIterator[Incoming]:
        self._start()
        while (chunk := await self._queue.get()) is not None:
            yield chunk
        yield Hangup(self.now())

    def hang_up(self) -> None:
        """The person at the microphone hangs up (Ctrl-C): the call ends as a caller's hang-up does."""
        self._queue.put_nowait(None)

    async def play(self, chunk: AudioChunk) -> None:
        self._speaker.push(resample(chunk, self._out_rate).pcm)

    async def flush(self) -> None:
        while not self._speaker.idle.is_set():
            await asyncio.sleep(BLOCK_SECONDS)
        await asyncio.sleep(0.1)  # the device's own buffer

    def clear(self) -> None:
        self._speaker.clear()

    async def close(self) -> None:
        for stream in self._streams:
            stream.stop()
            stream.close()
        self._streams = []
        self._queue.put_nowait(None)
