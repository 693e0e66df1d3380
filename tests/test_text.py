"""Speakable text and the streaming chunker (pure logic)."""

import re

from voxloop.text import (
    SpeechChunker,
    content_words,
    sentences,
    speakable,
    stem,
    until_repeated,
    words,
)


def test_markdown_is_removed_or_read_as_words() -> None:
    reply = (
        "## Paris facts\n"
        "**Paris** is the _capital_ of France.\n"
        "- It has the Eiffel Tower\n"
        "* It is on the Seine\n"
        "1. First, visit the Louvre\n"
        "2. Then eat a croissant\n"
        "See [the guide](https://example.com/guide) or https://www.paris.fr/visit.\n"
        "```python\nprint('hi')\n```\n"
        "Use `pip` to install."
    )
    text = speakable(reply)
    for markup in ("#", "*", "_", "`", "[", "](", "http", "print("):
        assert markup not in text, (markup, text)
    assert text.startswith("Paris facts. Paris is the capital of France.")
    assert "It has the Eiffel Tower. It is on the Seine." in text
    assert "1, First, visit the Louvre. 2, Then eat a croissant." in text
    assert "See the guide or paris.fr." in text
    assert text.endswith("Use pip to install.")


def test_emoji_are_dropped() -> None:
    assert speakable("Great job! 🎉👍🏽 Have a nice day ☀️🇫🇷") == "Great job! Have a nice day"


def test_plain_text_is_unchanged() -> None:
    assert speakable("It costs 3.50 euros, e.g. cheap.") == "It costs 3.50 euros, e.g. cheap."


def _stream(chunker: SpeechChunker, text: str, size: int = 3) -> list[str]:
    pieces = []
    for i in range(0, len(text), size):
        pieces += chunker.push(text[i : i + size])
    return pieces + chunker.flush()


def test_first_piece_is_a_short_clause_then_whole_sentences() -> None:
    text = (
        "Well, the capital of France, as you may know, is Paris. It is big. "
        "It has about two million people living in the city itself."
    )
    pieces = _stream(SpeechChunker(first_max_words=8), text)
    assert pieces[0] == "Well, the capital of France,"
    # later pieces end at sentence ends, short sentences merged up to min_chars
    assert pieces[1:] == [
        "as you may know, is Paris.",
        "It is big. It has about two million people living in the city itself.",
    ]


def test_first_piece_is_cut_after_a_few_words_when_no_clause_ends() -> None:
    text = "The capital city of France is Paris and it is lovely. Visit it in spring."
    pieces = _stream(SpeechChunker(first_max_words=5), text)
    assert pieces == [
        "The capital city of France",  # no period added: the sentence goes on
        "is Paris and it is lovely.",
        "Visit it in spring.",
    ]


def test_the_rest_of_the_opening_sentence_comes_as_soon_as_it_ends_or_at_a_clause() -> None:
    # Shorter than `min_chars`, it is not held for the next sentence: the first piece's sound
    # must not run out while that one is written.
    text = "The capital city of France is Paris. Paris is famous for its museums and its food."
    assert _stream(SpeechChunker(), text) == [
        "The capital city",
        "of France is Paris.",
        "Paris is famous for its museums and its food.",
    ]
    text = "The sky is blue during the day because air scatters sunlight, which is why it glows."
    assert _stream(SpeechChunker(), text) == [
        "The sky is",
        "blue during the day because air scatters sunlight,",  # a clause, six words or more
        "which is why it glows.",
    ]
    text = "Yes, of course, I can, and I will help you today. Then, later on, we rest."
    assert _stream(SpeechChunker(), text) == [
        "Yes, of course,",
        "I can, and I will help you today.",  # "I can," is too short to stand alone
        "Then, later on, we rest.",  # once a sentence has ended, whole sentences only
    ]


def test_chunker_does_not_split_numbers_or_code_blocks() -> None:
    text = "Pi is about 3.14 in value. Here:\n```\nx = 1. y = 2.\n```\nDone now, friend."
    pieces = _stream(SpeechChunker(first_min_words=99, first_max_words=99), text, size=2)
    joined = " ".join(pieces)
    assert "3.14" in joined and "x = 1" not in joined
    assert pieces[0] == "Pi is about 3.14 in value."


def test_numbered_list_items_are_not_cut_at_their_number() -> None:
    pieces = _stream(SpeechChunker(min_chars=1), "Steps:\n1. Open it.\n2. Close it.\n")
    assert pieces == ["Steps:", "1, Open it.", "2, Close it."]


def test_sentences() -> None:
    assert sentences("One. Two!\nThree? ") == ["One.", "Two!", "Three?"]


def test_a_title_does_not_end_a_sentence() -> None:
    text = "The mayor blamed Mr. Bell. Dr. Lee and Mrs. Hay agreed. It rang."
    expected = ["The mayor blamed Mr. Bell.", "Dr. Lee and Mrs. Hay agreed.", "It rang."]
    assert sentences(text) == expected
    assert _stream(SpeechChunker(first_min_words=20, first_max_words=30), text) == expected


def test_a_reply_that_opens_with_a_list_still_starts_with_a_short_piece() -> None:
    text = "1. Create a relaxing environment with soft lighting and comfortable bedding.\n"
    pieces = _stream(SpeechChunker(first_max_words=4), text)
    assert pieces[0] == "1, Create a relaxing"


def test_words_are_lower_case_letters_and_digits_of_any_script() -> None:
    assert words("It's 5 o'clock, Mr. Bell!") == ["it's", "5", "o'clock", "mr", "bell"]
    assert words("Un café, s'il vous plaît — à Zürich.") == [
        "un", "café", "s'il", "vous", "plaît", "à", "zürich",
    ]  # fmt: skip
    assert words("well-known snake_case") == ["well", "known", "snake", "case"]


def test_content_words_drop_stop_words_and_common_endings() -> None:
    assert content_words("The neighbors tried parking the cars.") == {
        "neighbor",
        "try",
        "park",
        "car",
    }
    assert stem("bus") == "bus" and stem("trying") == "try"


def _tokens(text: str) -> list[str]:
    """`text` as a model streams it: a word (with the space before it) or a mark at a time."""
    return re.findall(r"\s*\w+|[^\w\s]+", text)


def test_a_reply_ends_where_it_begins_to_say_a_sentence_again() -> None:
    looping = "Pack warm clothes. Sunglasses. Sunglasses. Sunscreen. Sunscreen. Sunscreen. Sun"
    assert "".join(until_repeated(_tokens(looping))) == "Pack warm clothes. Sunglasses. "
    paris = "Paris is the capital.\n\nParis is the capital.\n\nIt is famous"
    assert "".join(until_repeated(_tokens(paris))) == "Paris is the capital.\n\n"


def test_a_reply_without_repeats_passes_whole() -> None:
    for reply in (
        "The sky is blue. It is blue because air scatters blue light more than red light.",
        "1. Boil water. 2. Add the tea. 3. Wait three minutes.",  # numbered items differ
        "Yes",
        "",
    ):
        assert "".join(until_repeated(_tokens(reply))) == reply


def test_the_first_sentence_streams_and_later_ones_pass_once_ended() -> None:
    tokens = iter(_tokens("The sky is blue. Air scatters blue light. It"))
    passed = until_repeated(tokens)
    assert [next(passed), next(passed)] == ["The", " sky"]  # as the model writes them
    assert next(passed) == " is"
    assert list(passed) == [" blue", ".", " ", "Air scatters blue light. ", "It"]
