"""Arithmetic said aloud: "what is 17 times 23", "15 percent of 80", "square root of 144"."""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable

from voxloop.skills import FILLER, SkillContext, skill
from voxloop.skills.numbers import format_number

_N = r"(?P<{}>\d+(?:\.\d+)?)"
A, B = _N.format("a"), _N.format("b")
# Phrases whose numbers come in another order than they are said, found anywhere in the words.
_REORDER = [
    (rf"\badd {A} (?:and|to|plus) {B}", "{a} + {b}"),
    (rf"\b(?:subtract|take|taking) {A} (?:from|away from|off) {B}", "{b} - {a}"),
    (rf"\bmultiply {A} (?:by|and|with|times) {B}", "{a} * {b}"),
    (rf"\bdivide {A} (?:by|into|over) {B}", "{a} / {b}"),
    (rf"\b(?:sum|total) of {A} and {B}", "{a} + {b}"),
    (rf"\bproduct of {A} and {B}", "{a} * {b}"),
    (rf"\bdifference between {A} and {B}", "{a} - {b}"),
    (rf"\bhalf of {A}", "{a} / 2"),
    (rf"\b(?:a |1 )?third of {A}", "{a} / 3"),
    (rf"\b(?:a |1 )?quarter of {A}", "{a} / 4"),
    (rf"\b(?:double|twice) {A}", "{a} * 2"),
    (rf"\btriple {A}", "{a} * 3"),
    (rf"\bsquare root of {A}", "sqrt({a})"),
    (rf"\bcube root of {A}", "cbrt({a})"),
    (rf"\b{A} (?:to the power of|raised to) {B}", "{a} ** {b}"),
]
REORDER = [(re.compile(pattern), template) for pattern, template in _REORDER]
# Words a sum may be asked with; any other word makes it another question.
ASKING = frozenset(
    {
        "how", "much", "many", "is", "are", "was", "equal", "equals", "make", "makes", "come",
        "comes", "to", "get", "gets", "if", "when", "you", "answer", "result", "calculate",
        "compute", "work", "out", "figure", "solve", "quick", "math", "maths", "question", "give",
        "need", "number", "then", "be", "will", "would", "the", "of", "for", "me", "please",
        "does", "do", "what's", "whats",
    }
)  # fmt: skip
_OPERATORS = [  # spoken -> symbol, longest first
    ("multiplied by", "*"), ("divided by", "/"), ("to the power of", "**"),
    ("raised to the power of", "**"), ("percent of", "/ 100 *"), ("% of", "/ 100 *"),
    ("take away", "-"), ("plus", "+"), ("minus", "-"), ("times", "*"), ("x", "*"),
    ("over", "/"), ("squared", "** 2"), ("cubed", "** 3"), ("cubes", "** 3"), ("and", "+"),
    ("less", "-"),
    ("add", "+"),
]  # fmt: skip
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_OPERATOR_TOKENS = {"+", "-", "*", "/", "**", "sqrt", "cbrt"}
_SYMBOLS = {*_OPERATOR_TOKENS, "(", ")"}
_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow,
}  # fmt: skip
_FUNCTIONS: dict[str, Callable[[float], float]] = {"sqrt": math.sqrt, "cbrt": math.cbrt}
# Numbers a transcript writes as words when they follow an operator ("times for").
_HOMOPHONES = {"for": "4", "to": "2", "too": "2", "won": "1", "ate": "8"}
MAX_EXPONENT = 100  # beyond it the answer is not something to say aloud


def expression(words: str) -> str | None:
    """The arithmetic in `words` as a Python expression, or None if it is not only arithmetic."""
    for pattern, template in REORDER:
        if match := pattern.search(words):
            said = template.format(**match.groupdict())
            words = f"{words[: match.start()]} {said} {words[match.end() :]}"
            break
    for spoken, symbol in _OPERATORS:
        words = re.sub(rf"(?<![\w.]){re.escape(spoken)}(?![\w])", f" {symbol} ", words)
    tokens = words.replace("(", " ( ").replace(")", " ) ").split()
    # Asking words around the sum ("what has 6 times 7", a misheard "what is") carry nothing.
    tokens = [
        _HOMOPHONES.get(t, t) if i and tokens[i - 1] in _OPERATOR_TOKENS else t
        for i, t in enumerate(tokens)
    ]
    tokens = [t for t in tokens if t not in FILLER and t not in ASKING]
    if not any(token in _OPERATOR_TOKENS for token in tokens):
        return None
    if not all(_NUMBER.match(token) or token in _SYMBOLS for token in tokens):
        return None
    return " ".join(tokens)


def evaluate(source: str) -> float:
    """The value of an arithmetic expression of numbers, + - * / **, sqrt() and cbrt()."""
    return _value(ast.parse(source, mode="eval").body)


def _value(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_value(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError("exponent too large")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1:
        return _FUNCTIONS[node.func.id](_value(node.args[0]))
    raise ValueError(f"not arithmetic: {ast.dump(node)}")


def spoken(source: str) -> str:
    """The expression as words, for the answer ("17 * 23" -> "17 times 23")."""
    words = {"+": "plus", "-": "minus", "*": "times", "/": "divided by", "**": "to the power of"}
    text = re.sub(r"sqrt \( (\S+) \)", r"the square root of \1", source)
    text = re.sub(r"cbrt \( (\S+) \)", r"the cube root of \1", text)
    text = text.replace("/ 100 *", "percent of").replace("** 2", "squared")
    text = text.replace("** 3", "cubed")
    return " ".join(words.get(token, token) for token in text.split())


@skill("arithmetic")
def arithmetic(words: str, context: SkillContext) -> str | None:
    """The result of a sum said aloud."""
    source = expression(words)
    if source is None:
        return None
    try:
        value = evaluate(source)
    except ZeroDivisionError:
        return "You cannot divide by zero."
    except (ValueError, SyntaxError, KeyError, OverflowError, TypeError):
        return None
    said = spoken(source)
    return f"{said[0].upper()}{said[1:]} is {format_number(value)}."
