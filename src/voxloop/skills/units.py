"""Unit conversion: "how many centimetres in three feet", "convert 5 miles to kilometres"."""

from __future__ import annotations

import re
from dataclasses import dataclass

from voxloop.skills import FILLER, SkillContext, skill
from voxloop.skills.numbers import format_number


@dataclass(frozen=True)
class Unit:
    """A unit: its kind, its size in the kind's base unit, and how it is said."""

    kind: str
    size: float  # in metres, grams, litres or seconds; temperatures convert by formula
    singular: str
    plural: str


def _units() -> dict[str, Unit]:
    table = [
        ("length", 0.001, "millimetre", "millimetres", "millimeter|millimeters|mm"),
        ("length", 0.01, "centimetre", "centimetres", "centimeter|centimeters|cm"),
        ("length", 1.0, "metre", "metres", "meter|meters|m"),
        ("length", 1000.0, "kilometre", "kilometres", "kilometer|kilometers|km|kms"),
        ("length", 0.0254, "inch", "inches", "in"),
        ("length", 0.3048, "foot", "feet", "ft"),
        ("length", 0.9144, "yard", "yards", "yd|yds"),
        ("length", 1609.344, "mile", "miles", "mi"),
        ("mass", 0.001, "milligram", "milligrams", "mg"),
        ("mass", 1.0, "gram", "grams", "g|gramme|grammes"),
        ("mass", 1000.0, "kilogram", "kilograms", "kg|kilo|kilos|kgs"),
        ("mass", 28.349523125, "ounce", "ounces", "oz"),
        ("mass", 453.59237, "pound", "pounds", "lb|lbs"),
        ("mass", 6350.29318, "stone", "stone", "stones"),
        ("mass", 1_000_000.0, "tonne", "tonnes", "metric ton|metric tons"),
        ("volume", 0.001, "millilitre", "millilitres", "milliliter|milliliters|ml"),
        ("volume", 1.0, "litre", "litres", "liter|liters|l"),
        ("volume", 0.00492892, "teaspoon", "teaspoons", "tsp"),
        ("volume", 0.0147868, "tablespoon", "tablespoons", "tbsp"),
        ("volume", 0.236588, "cup", "cups", ""),
        ("volume", 0.473176, "pint", "pints", "us pint|us pints"),
        ("volume", 0.946353, "quart", "quarts", ""),
        ("volume", 3.78541, "gallon", "gallons", "us gallon|us gallons"),
        ("volume", 0.0295735, "fluid ounce", "fluid ounces", "fl oz"),
        ("time", 1.0, "second", "seconds", "sec|secs"),
        ("time", 60.0, "minute", "minutes", "min|mins"),
        ("time", 3600.0, "hour", "hours", "hr|hrs"),
        ("time", 86400.0, "day", "days", ""),
        ("time", 604800.0, "week", "weeks", ""),
        ("time", 31_536_000.0, "year", "years", ""),
        ("speed", 1 / 3.6, "kilometre per hour", "kilometres per hour",
         "kilometer per hour|kilometers per hour|km per hour|kmh|kph|km/h"),
        ("speed", 0.44704, "mile per hour", "miles per hour", "mph|mi/h"),
        ("speed", 1.0, "metre per second", "metres per second",
         "meter per second|meters per second|m/s"),
        ("temperature", 0.0, "degree Celsius", "degrees Celsius",
         "celsius|centigrade|degree centigrade|degrees centigrade"),
        ("temperature", 0.0, "degree Fahrenheit", "degrees Fahrenheit", "fahrenheit"),
        ("temperature", 0.0, "kelvin", "kelvin", "kelvins|degrees kelvin"),
    ]  # fmt: skip
    units: dict[str, Unit] = {}
    for kind, size, singular, plural, aliases in table:
        unit = Unit(kind, size, singular, plural)
        for name in (singular.lower(), plural.lower(), *filter(None, aliases.split("|"))):
            units[name] = unit
    return units


UNITS = _units()
# Ambiguous as units in ordinary questions ("how many legs in a spider"): need a number.
NEEDS_NUMBER = {"in", "m", "l", "g", "min", "mi", "sec", "hr"}
_UNIT = "|".join(sorted((re.escape(name) for name in UNITS), key=len, reverse=True))
_MENTION = re.compile(
    rf"(?:(?P<n>\d+(?:\.\d+)?|an?|one|the) )?(?:degrees? )?(?<![\w.])(?P<unit>{_UNIT})(?![\w])"
)
_TARGET_FIRST = re.compile(rf"\bhow (?:many|much) (?:degrees? )?(?P<unit>{_UNIT})\b")
# Words a conversion may be asked with; any other word makes it another question.
ASKING = {
    "how", "many", "much", "convert", "change", "turn", "in", "into", "to", "as", "is", "are",
    "make", "makes", "equal", "equals", "there", "per", "degrees", "degree", "from", "and",
    "of", "be", "would", "that", "express", "go", "goes", "get", "one", "the", "if", "i",
    "have", "roughly", "about", "approximately", "exactly", "metric", "imperial", "units",
    "fast", "speed", "weigh", "weighs", "weight",
}  # fmt: skip


def _mentions(words: str) -> list[re.Match[str]]:
    """The units named in `words`; a short ambiguous one ('in', 'm') only after a number."""
    return [
        mention
        for mention in _MENTION.finditer(words)
        if mention["unit"] not in NEEDS_NUMBER or (mention["n"] or "")[:1].isdigit()
    ]


def _only_conversion_words(words: str, mentions: list[re.Match[str]]) -> bool:
    rest = words
    for mention in reversed(mentions):
        rest = rest[: mention.start()] + " " + rest[mention.end() :]
    return set(rest.split()) <= ASKING | FILLER


def convert(value: float, source: Unit, target: Unit) -> float:
    """`value` in `source` units, expressed in `target` units (same kind)."""
    if source.kind == "temperature":
        return _from_celsius(_to_celsius(value, source), target)
    return value * source.size / target.size


def _to_celsius(value: float, unit: Unit) -> float:
    if "Fahrenheit" in unit.singular:
        return (value - 32) * 5 / 9
    return value - 273.15 if unit.singular == "kelvin" else value


def _from_celsius(value: float, unit: Unit) -> float:
    if "Fahrenheit" in unit.singular:
        return value * 9 / 5 + 32
    return value + 273.15 if unit.singular == "kelvin" else value


def _amount(value: float, unit: Unit) -> str:
    return f"{format_number(value)} {unit.singular if value == 1 else unit.plural}"


@skill("units")
def units(words: str, context: SkillContext) -> str | None:
    """A conversion between two units of the same kind, however it is asked."""
    mentions = _mentions(words)
    if len(mentions) != 2 or not _only_conversion_words(words, mentions):
        return None
    first, second = mentions
    target_first = _TARGET_FIRST.search(words)
    source, target = (second, first) if target_first else (first, second)
    if source["n"] is None and target["n"] is not None:
        source, target = target, source  # "how many feet is 3 metres", said the other way
    if UNITS[source["unit"]].kind != UNITS[target["unit"]].kind or source["unit"] == target["unit"]:
        return None
    number = source["n"]
    if number is None and {source["unit"], target["unit"]} & NEEDS_NUMBER:
        return None
    value = float(number) if number and number[0].isdigit() else 1.0
    result = convert(value, UNITS[source["unit"]], UNITS[target["unit"]])
    return f"{_amount(value, UNITS[source['unit']])} is {_amount(result, UNITS[target['unit']])}."
