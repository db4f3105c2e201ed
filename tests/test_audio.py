"""Caller audio at the boundary: any WAV is accepted and converted; what is not a WAV is refused clearly."""
import wave

import numpy as np
import pytest

from ivr.audio.pcm import BadAudio, phone_channel, read_wav, rms_dbfs, ulaw_decode, ulaw_encode


def write(path, samples: np.ndarray, rate: int, channels: int = 1, width: int = 2):
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())


def tone(rate: int, seconds: float = 1.0, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * 12000).astype("<i2")


def test_stereo_44k_is_mixed_down_and_resampled_not_refused(tmp_path):
    left = tone(44100)
    write(tmp_path / "stereo.wav", np.stack([left, left], axis=1), 44100, channels=2)
    chunk = read_wav(tmp_path / "stereo.wav", 16000)
    assert chunk.rate == 16000 and abs(chunk.seconds - 1.0) < 0.01
    assert -17 < rms_dbfs(chunk.pcm) < -10  # the tone survives at its level


def test_eight_bit_wav_is_converted(tmp_path):
    samples = ((tone(8000).astype(np.int32) >> 8) + 128).astype(np.uint8)
    write(tmp_path / "8bit.wav", samples, 8000, width=1)
    chunk = read_wav(tmp_path / "8bit.wav")
    assert chunk.rate == 8000 and rms_dbfs(chunk.pcm) > -17


@pytest.mark.parametrize("content", [b"", b"this is not audio at all", b"RIFF\x10\x00\x00\x00WAVEfmt garbage",
                                     b"RIFF....WAVEnot really"])
def test_corrupt_or_non_wav_input_is_refused_with_the_file_name(tmp_path, content):
    path = tmp_path / "caller.wav"
    path.write_bytes(content)
    with pytest.raises(BadAudio) as refused:
        read_wav(path)
    assert "caller.wav" in str(refused.value) and "WAV" in str(refused.value)


def test_a_missing_file_is_refused_with_its_name(tmp_path):
    with pytest.raises(BadAudio, match="nowhere.wav"):
        read_wav(tmp_path / "nowhere.wav")


def test_phone_channel_is_8k_band_limited_mu_law(speak):
    wideband = speak("four eight one five one six two three")
    phone = phone_channel(wideband)
    assert phone.rate == 8000 and abs(phone.seconds - wideband.seconds) < 0.01
    assert ulaw_decode(ulaw_encode(phone.pcm)) == phone.pcm  # already on the mu-law grid
    low = np.abs(np.fft.rfft(np.frombuffer(phone.pcm, "<i2")))
    freqs = np.fft.rfftfreq(len(phone.pcm) // 2, 1 / 8000)
    assert low[freqs < 150].sum() < 0.05 * low.sum()  # the band's low edge is gone


def test_a_live_stream_resampled_in_20ms_blocks_matches_resampling_it_whole(speak):
    """The microphone's 44.1 kHz blocks reach the call at 16 kHz without an edge every 20 ms."""
    from ivr.audio.pcm import StreamResampler, resample, split

    words = resample(speak("four eight one five"), 44100)
    stream = StreamResampler(44100, 16000)
    pieces = b"".join(stream(block).pcm for block in split(words, 0.02))
    whole = np.frombuffer(resample(words, 16000).pcm, "<i2").astype(float)
    streamed = np.frombuffer(pieces, "<i2").astype(float)
    assert 0 <= len(whole) - len(streamed) < 1600  # only the filter's last few ms wait for more audio
    assert int(np.argmax(np.correlate(streamed[:16000], whole[:16000], "full"))) - 15999 == 0  # no delay
    # the same samples to within rounding; resampling each block alone is off by ~3000 at the edges
    assert np.abs(streamed - whole[: len(streamed)]).max() <= 8


def test_a_caller_file_over_fifteen_minutes_is_refused_before_it_is_read(tmp_path):
    import wave

    from conftest import ivr_command

    long = tmp_path / "sixteen-minutes.wav"
    with wave.open(str(long), "wb") as wav:
        wav.setnchannels(1), wav.setsampwidth(2), wav.setframerate(8000)
        wav.writeframes(bytes(8000 * 2 * 60 * 16))
    with pytest.raises(BadAudio, match="16 minutes.*at most 15 minutes"):
        read_wav(long)
    done = ivr_command("call", "--caller-audio", long, timeout=60)
    assert done.returncode != 0 and "at most 15 minutes" in done.stderr and "Traceback" not in done.stderr
