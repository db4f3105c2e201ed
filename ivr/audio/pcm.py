"""Caller and bot audio as AudioChunks: WAV in and out, resampling, G.711, the phone channel.

One resampler (soxr) and one G.711 codec (the standard library's audioop) for the whole product.
"""
from __future__ import annotations

import audioop
import io
import struct
import wave
from pathlib import Path
from typing import Union

import numpy as np
import soxr

from ivr.events import SAMPLE_WIDTH, AudioChunk

PHONE_RATE = 8000
WIDEBAND_RATE = 16000
# The product's one audio frame: the endpointer judges one at a time, and every phone line sends one
# per tick (a phone's jitter buffer expects 20 ms packets; webrtcvad takes 10, 20 or 30 ms).
FRAME_SECONDS = 0.02


def frame_bytes(rate: int) -> int:
    """The bytes of one frame of 16-bit mono audio at `rate`."""
    return int(rate * FRAME_SECONDS) * SAMPLE_WIDTH


PHONE_FRAME_BYTES = frame_bytes(PHONE_RATE)  # 160 samples, the payload of one G.711 packet


class BadAudio(ValueError):
    """Audio we cannot use; the message names the file and what is wrong."""


def resample(chunk: AudioChunk, rate: int) -> AudioChunk:
    if chunk.rate == rate or not chunk.pcm:
        return AudioChunk(chunk.pcm, rate, chunk.timestamp)
    samples = np.frombuffer(chunk.pcm, dtype="<i2")
    out = soxr.resample(samples, chunk.rate, rate, quality="HQ")
    return AudioChunk(np.asarray(out, dtype="<i2").tobytes(), rate, chunk.timestamp)


class StreamResampler:
    """Resampling for a live stream of small chunks: keeps the filter's state from one to the next,
    where resample() on each 20 ms block would leave an edge every 20 ms."""

    def __init__(self, rate_in: int, rate_out: int):
        self.rate_in, self.rate_out = rate_in, rate_out
        self._stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="int16", quality="HQ") if rate_in != rate_out else None

    def __call__(self, chunk: AudioChunk) -> AudioChunk:
        if self._stream is None:
            return chunk
        out = self._stream.resample_chunk(np.frombuffer(chunk.pcm, dtype="<i2"))
        return AudioChunk(np.asarray(out, dtype="<i2").tobytes(), self.rate_out, chunk.timestamp)


MAX_CALLER_SECONDS = 15 * 60  # a caller's answer, or a whole call, is far shorter; larger files would fill memory


def read_wav(source: Union[str, Path, bytes], rate: int | None = None) -> AudioChunk:
    """Any PCM WAV (8-32 bit, mono or multichannel, any rate) as mono 16-bit, resampled to `rate` if given."""
    name = "audio data" if isinstance(source, bytes) else str(source)
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    except OSError as exc:
        raise BadAudio(f"{name}: cannot open ({exc.strerror})") from exc
    try:
        with handle, wave.open(handle, "rb") as wav:
            channels, width, wav_rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            if wav_rate > 0 and wav.getnframes() / wav_rate > MAX_CALLER_SECONDS:  # refused before it is read
                raise BadAudio(f"{name}: {wav.getnframes() / wav_rate / 60:.0f} minutes of audio; a caller file may "
                               f"be at most {MAX_CALLER_SECONDS // 60} minutes (cut it with `sox IN OUT trim 0 15:00`)")
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError, RuntimeError, struct.error, ValueError) as exc:  # wave's errors for bad chunks
        raise BadAudio(f"{name}: not a PCM WAV file ({exc}); convert it with e.g. "
                       f"`sox INPUT -b 16 -c 1 out.wav`") from exc
    if wav_rate <= 0 or channels <= 0:
        raise BadAudio(f"{name}: WAV header says {channels} channels at {wav_rate} Hz")
    if width != SAMPLE_WIDTH:
        frames = audioop.lin2lin(frames, width, SAMPLE_WIDTH)
        if width == 1:  # 8-bit WAV is unsigned
            frames = audioop.bias(frames, SAMPLE_WIDTH, 0)
    frames = frames[: len(frames) - len(frames) % (SAMPLE_WIDTH * channels)]
    if channels > 1:
        mixed = np.frombuffer(frames, dtype="<i2").reshape(-1, channels).mean(axis=1)
        frames = mixed.astype("<i2").tobytes()
    chunk = AudioChunk(frames, wav_rate)
    return resample(chunk, rate) if rate else chunk


def wav_bytes(chunk: AudioChunk) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(chunk.rate)
        wav.writeframes(chunk.pcm)
    return buffer.getvalue()


def write_wav(path: Union[str, Path], chunk: AudioChunk) -> None:
    Path(path).write_bytes(wav_bytes(chunk))


def write_stereo_wav(path: Union[str, Path], left: bytes, right: bytes, rate: int) -> None:
    """Two mono 16-bit tracks of the same rate as one two-channel WAV (the shorter padded with silence)."""
    a, b = np.frombuffer(left, dtype="<i2"), np.frombuffer(right, dtype="<i2")
    length = max(len(a), len(b))
    frames = np.zeros((length, 2), dtype="<i2")
    frames[: len(a), 0], frames[: len(b), 1] = a, b
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(rate)
        wav.writeframes(frames.tobytes())


def ulaw_encode(pcm: bytes) -> bytes:
    return audioop.lin2ulaw(pcm, SAMPLE_WIDTH)


def ulaw_decode(data: bytes) -> bytes:
    return audioop.ulaw2lin(data, SAMPLE_WIDTH)


def alaw_encode(pcm: bytes) -> bytes:
    return audioop.lin2alaw(pcm, SAMPLE_WIDTH)


def alaw_decode(data: bytes) -> bytes:
    return audioop.alaw2lin(data, SAMPLE_WIDTH)


def phone_channel(chunk: AudioChunk) -> AudioChunk:
    """What a caller sounds like over the phone: 300-3400 Hz band, 8 kHz, through G.711 mu-law."""
    from scipy.signal import butter, sosfilt

    narrow = resample(chunk, PHONE_RATE)
    samples = np.frombuffer(narrow.pcm, dtype="<i2").astype(np.float64)
    band = butter(4, [300, 3400], btype="bandpass", fs=PHONE_RATE, output="sos")
    filtered = np.clip(sosfilt(band, samples), -32768, 32767).astype("<i2").tobytes()
    return AudioChunk(ulaw_decode(ulaw_encode(filtered)), PHONE_RATE, chunk.timestamp)


def rms_dbfs(pcm: bytes) -> float:
    """Loudness of 16-bit PCM in dB below full scale (-inf for digital silence)."""
    if not pcm:
        return float("-inf")
    level = audioop.rms(pcm, SAMPLE_WIDTH)
    return 20 * np.log10(level / 32768) if level else float("-inf")


def split(chunk: AudioChunk, seconds: float) -> list[AudioChunk]:
    """Cut into frames of `seconds` (the last may be shorter), timestamps following on."""
    step = int(chunk.rate * seconds) * SAMPLE_WIDTH
    return [AudioChunk(chunk.pcm[i:i + step], chunk.rate, chunk.timestamp + i / SAMPLE_WIDTH / chunk.rate)
            for i in range(0, len(chunk.pcm), step)]
