"""Numbers as people say them ("twenty-three", "one and a half", "3.5") and as voxloop says them."""

from __future__ import annotations

import re

UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
FRACTIONS = {"half": 0.5, "quarter": 0.25, "third": 1 / 3}
NUMBER_WORDS = {*UNITS, *TENS, *SCALES, "point", "a", "an", "and", *FRACTIONS, "dozen"}
DIGITS = re.compile(r"^\d+(?:\.\d+)?$")
MAX_DECIMALS = 2
_COUNTED = {*SCALES, "dozen"}  # words that "a" or "an" can count ("a hundred")


def _token_value(token: str) -> float | None:
    if DIGITS.match(token):
        return float(token)
    if token in UNITS:
        return UNITS[token]
    return TENS.get(token)


def parse_number(words: list[str]) -> float | None:
    """The value of a whole run of number words ("one hundred and five" -> 105), else None.

    Digits may be mixed in ("2 hundred"); "a"/"an" count as one before a scale or fraction
    ("a hundred", "an hour and a half" is handled by the caller), "X and a half" adds 0.5.
    """
    if not words:
        return None
    if "point" in words:  # "three point five"
        whole, _, decimals = _split(words, "point")
        integer = parse_number(whole) if whole else 0.0
        if integer is None or not decimals or any(w not in UNITS for w in decimals):
            return None
        return integer + float("0." + "".join(str(UNITS[w]) for w in decimals))
    if words[-2:] in (["a", "half"], ["and", "half"]) or words[-3:] == ["and", "a", "half"]:
        cut = 3 if words[-3:] == ["and", "a", "half"] else 2
        base = parse_number(words[:-cut]) if len(words) > cut else 0.0
        return None if base is None else base + FRACTIONS["half"]
    return _integer(words)


def _split(words: list[str], word: str) -> tuple[list[str], str, list[str]]:
    index = words.index(word)
    return words[:index], word, words[index + 1 :]


def _integer(words: list[str]) -> float | None:
    total, current, seen = 0.0, 0.0, False
    for position, word in enumerate(words):
        value = _token_value(word)
        if value is not None:
            current += value
            seen = True
        elif word in ("a", "an") and position == 0 and words[1:2] and words[1] in _COUNTED:
            current, seen = 1.0, True  # "a hundred", "a dozen"; not "a five minute timer"
        elif word == "dozen":
            current, seen = (current or 1) * 12, True
        elif word in SCALES:
            scale = SCALES[word]
            current = (current or 1) * scale
            if scale >= SCALES["thousand"]:
                total, current = total + current, 0.0
            seen = True
        elif word == "and" and position > 0 and words[position - 1] in SCALES:
            continue  # "one hundred and five"; "five and three" are two numbers
        else:
            return None
    return total + current if seen else None


def numbers_to_digits(text: str) -> str:
    """Replace every run of number words in `text` by digits ("seventeen times 3" ->
    "17 times 3"); other words are kept as they are."""
    tokens = text.split()
    out: list[str] = []
    index = 0
    while index < len(tokens):
        end = _longest_number(tokens, index)
        if end > index:
            value = parse_number(tokens[index:end])
            out.append(format_number(value) if value is not None else " ".join(tokens[index:end]))
            index = end
        else:
            out.append(tokens[index])
            index += 1
    return " ".join(out)


def _longest_number(tokens: list[str], start: int) -> int:
    """The end of the longest run of words from `start` that is one number (start if none)."""
    end = start
    stop = start
    if tokens[start] == "and":
        return start
    while stop < len(tokens) and (tokens[stop] in NUMBER_WORDS or DIGITS.match(tokens[stop])):
        stop += 1
    for candidate in range(stop, start, -1):
        run = tokens[start:candidate]
        if run[-1] in ("and", "a", "an", "point"):
            continue
        if parse_number(run) is not None and _digits_alone(run):
            end = candidate
            break
    return end


def _digits_alone(run: list[str]) -> bool:
    """Two numbers side by side ("5 3") are two numbers, not one."""
    numeric = [w for w in run if DIGITS.match(w)]
    return len(numeric) <= 1 and not (numeric and len(run) > 1 and run[0] != numeric[0])


def format_number(value: float) -> str:
    """A value as voxloop says it: whole numbers without decimals, others to two places."""
    rounded = round(value, MAX_DECIMALS)
    if rounded == int(rounded):
        return f"{int(rounded)}"
    return f"{rounded:.{MAX_DECIMALS}f}".rstrip("0").rstrip(".")
