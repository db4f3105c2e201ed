"""What recognizers write, normalised for what the prompt expects."""
import pytest

from ivr.asr.numbers import complete_answer, normalise
from ivr.events import FREE, Expectation

DIGITS = Expectation("digits")
YES_NO = Expectation("yes_no")
AMOUNT = Expectation("amount")


@pytest.mark.parametrize("heard, digits", [
    ("26-0-8-1-5-9", "2608159"),
    ("613-1860", "6131860"),
    ("4.6 to 8", "4628"),
    ("oh", "0"),
    ("double five", "55"),
    ("triple seven two", "7772"),
    ("four eight one five one six two three", "48151623"),
    ("Four, eight, one, five, one, six, two, three.", "48151623"),
    ("forty eight fifteen sixteen twenty three", "48151623"),
    ("4, 8, 1, 5.", "4815"),
    ("48151623", "48151623"),
    ("4 8 1 5 1 6 2 3", "48151623"),
    ("one two three four won too ate for", "12341284"),
    ("It's four eight one five one six two three.", "48151623"),
    ("six oh one", "601"),
    ("twenty six oh eight", "2608"),
])
def test_spoken_and_written_digits_become_a_digit_string(heard, digits):
    assert normalise(heard, DIGITS) == digits


@pytest.mark.parametrize("heard, length, digits", [
    ("9 4 1 4 9 4 1", 4, "9414"),  # Whisper started the PIN over
    ("7 1 7 0 7 6 9 1 7 1 7", 8, "71707691"),
    ("1 2 3 4 5 6 7 8 9", 8, "123456789"),  # a ninth digit that is new stays: the caller is asked again
    ("1 2 3 4", 8, "1234"),
])
def test_a_runaway_repeat_is_cut_at_the_expected_length(heard, length, digits):
    assert normalise(heard, Expectation("digits", length)) == digits


def test_words_that_are_not_digits_are_kept_for_the_dialog():
    assert normalise("I want to talk to an agent", DIGITS) == "I want to talk to an agent"
    assert normalise("I don't know it", DIGITS) == "I don't know it"


def test_homophones_are_digits_only_where_digits_are_expected():
    assert normalise("I want to pay for my bill", FREE) == "I want to pay for my bill"
    assert normalise("Go to eight", YES_NO) == "go to 8"  # "to" stays a word: no number run around it


@pytest.mark.parametrize("heard, word", [
    ("Yes.", "yes"), ("yeah", "yes"), ("Yes, that's right.", "yes"), ("correct", "yes"),
    ("That's right", "yes"), ("No.", "no"), ("nope", "no"), ("No, that's wrong.", "no"),
    ("That's not right", "no"), ("not correct", "no"),
])
def test_yes_and_no(heard, word):
    assert normalise(heard, YES_NO) == word


def test_other_answers_to_a_yes_no_question_are_kept():
    assert normalise("I want to speak to an agent.", YES_NO) == "I want to speak to an agent."


@pytest.mark.parametrize("heard, amount", [
    ("fifty dollars and twenty five cents", "50.25"),
    ("fifty twenty five", "50.25"),
    ("$50.25", "50.25"),
    ("I'll pay $50.", "50.00"),
    ("one hundred and twenty dollars", "120.00"),
    ("$1,200.50", "1200.50"),
    ("fifty dollars", "50.00"),
])
def test_amounts(heard, amount):
    assert normalise(heard, AMOUNT) == amount


def test_amount_without_a_number_is_kept():
    assert normalise("The full balance.", AMOUNT) == "The full balance."


def test_free_text_is_left_alone():
    assert normalise("  I want to pay my bill. ", FREE) == "I want to pay my bill."


# What Whisper tiny.en wrote for flite and espeak callers over the phone, stopped mid-sentence or finished.
@pytest.mark.parametrize("heard", ["I want to...", "I need to change my", "I'm calling about.", "Yes, so I.",
                                   "I want to pay my bill,", "I was charged twice for.", "the thing is...",
                                   "12 Oak Street", "I have a question about", ""])
def test_free_speech_that_trails_off_or_leads_on_is_no_finished_sentence(heard):
    assert not complete_answer(heard, FREE)


@pytest.mark.parametrize("heard", ["What is my balance?", "Let me talk to an agent.", "Goodbye.", "help.",
                                   "No, that's all, goodbye.", "I don't know that.", "Never mind. Never mind."])
def test_a_finished_sentence_in_free_speech_is_complete(heard):
    assert complete_answer(heard, FREE)
