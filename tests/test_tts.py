"""The bot's voice: pyttsx3 with espeak-ng, one owner thread, cached prompts, sentence by sentence."""
from concurrent.futures import ThreadPoolExecutor

from conftest import voiced_seconds

from ivr.audio.pcm import resample, rms_dbfs
from ivr.tts.cache import PromptCache
from ivr.tts.pyttsx3_voice import Pyttsx3Synthesizer


def voiced(chunk) -> float:
    return voiced_seconds(resample(chunk, 16000).pcm, 16000)


def test_a_prompt_is_rendered_as_speech_of_plausible_length():
    prompt = Pyttsx3Synthesizer().render("Please say or key in your 8 digit account number.")
    assert 2.0 < prompt.seconds < 6.0  # eleven words at 165 words a minute
    assert rms_dbfs(prompt.pcm) > -35 and voiced(prompt) > 1.5


def test_the_rate_setting_changes_how_fast_the_bot_speaks():
    text = "Thank you for calling. Goodbye."
    slow, fast = Pyttsx3Synthesizer(rate=110).render(text), Pyttsx3Synthesizer(rate=220).render(text)
    assert slow.seconds > 1.5 * fast.seconds


def test_cached_prompts_are_not_rendered_again():
    cache = PromptCache(Pyttsx3Synthesizer())
    first = cache.render("How can I help?")
    again = cache.render("How can I help?")
    assert again is first and cache.renders == 1


def test_two_calls_can_render_at_once():
    synth = Pyttsx3Synthesizer()
    texts = ["Sure, I'll connect you with an agent now.", "Sorry, I didn't catch that."] * 3
    with ThreadPoolExecutor(4) as pool:
        rendered = list(pool.map(synth.render, texts))
    assert all(voiced(r) > 0.8 for r in rendered)
    # no mix-ups: each text got its own audio (espeak-ng is not bit-exact between renders; lengths are)
    assert abs(rendered[0].seconds - rendered[2].seconds) < 0.05 and rendered[0].seconds > rendered[1].seconds + 0.3


def test_a_long_reply_comes_sentence_by_sentence():
    cache = PromptCache(Pyttsx3Synthesizer())
    reply = "Thank you. I have account 4 8 1 5 1 6 2 3. To finish this, I'll connect you with an agent who can help."
    parts = list(cache.render_sentences(reply))
    assert len(parts) == 3
    assert parts[0].seconds < 1.5 < sum(p.seconds for p in parts)  # the first audio is short and ready first
    assert cache.render("Thank you.") is parts[0]  # each sentence is cached on its own


FIRST_PROMPT = """
from ivr.tts.pyttsx3_voice import Pyttsx3Synthesizer
print(Pyttsx3Synthesizer().render("Hello, thanks for calling. You can pay a bill or check your balance.").seconds)
"""


def test_a_new_voice_speaks_its_first_prompt_while_the_machine_is_busy():
    """pyttsx3 2.99 returned before espeak-ng had written the first prompt; on a loaded machine
    that was most first prompts (a caller's greeting) failing with 'cannot open'."""
    import subprocess
    import sys

    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        voices = [subprocess.run([sys.executable, "-c", FIRST_PROMPT], capture_output=True, text=True, timeout=60)
                  for _ in range(5)]
    finally:
        for process in busy:
            process.kill()
            process.wait()
    assert [v.stderr[-300:] for v in voices if v.returncode != 0] == []
    assert all(float(v.stdout.split()[-1]) > 2.0 for v in voices)
