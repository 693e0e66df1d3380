"""`voxloop bench answers`: are everyday questions answered right, typed and spoken?

Each question of benchmarks/answers/questions.json goes through the whole pipeline, as a person
gets it (skills in front of the model included): typed as text, and spoken by voices of engines
voxloop does not speak with (flite, festival), synthesized once into the cache dir. A reply is
right when it contains one accepted word of every answer group (see `judge`).

Knobs: the model, system prompt and temperature come from the settings (VOXLOOP_LLM__MODEL,
VOXLOOP_SYSTEM_PROMPT, VOXLOOP_LLM__TEMPERATURE) or the arguments of `measure`; the suite reads
what to run from VOXLOOP_BENCH_ANSWERS_MODES ("typed,spoken"), VOXLOOP_BENCH_ANSWERS_VOICES
(e.g. "flite-slt,flite-awb,festival-ked"), VOXLOOP_BENCH_ANSWERS_SPLIT ("tune" or "heldout"),
VOXLOOP_BENCH_ANSWERS_REPLY_VOICE (the voice that speaks the replies),
VOXLOOP_BENCH_ANSWERS_ROTATE=1 (each question spoken by one of the voices in turn, not by all)
and VOXLOOP_BENCH_ANSWERS_FILE (another set of questions under benchmarks/, such as
answers/heldout-2.json, the second held-out set).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxloop.config import Settings
from voxloop.errors import VoxloopError
from voxloop_bench import _peak_rss_mb, _percentile, data_file, progress_bar, suite

QUESTIONS_FILE = "answers/questions.json"
# Questions about the person and the future, unknowable or not (written apart from the rule).
PERSONAL_FILE = "answers/personal.json"
UNKNOWABLE = "unknowable"  # the category whose right reply says it cannot know
UNKNOWABLE_MAX_WORDS = 40  # "says so briefly": a longer reply is not brief
MODES = ("typed", "spoken")
SPLITS = ("tune", "heldout", "heldout-2")
DEFAULT_VOICES = ("flite-slt", "flite-awb", "festival-ked")
AUDIO_FOLDER = "bench-answers"
SYNTH_TIMEOUT_SECONDS = 60
ENV_PREFIX = "VOXLOOP_BENCH_ANSWERS_"


# --- judging -------------------------------------------------------------------------------

_UNITS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_SMALL = {word: value for value, word in enumerate(_UNITS)} | _TENS
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_TEEN_MIN, _UNIT_MAX, _TWO_DIGITS = 10, 9, 100  # "nineteen sixty" -> a year, "five six" does not


def canonical_words(text: str) -> list[str]:
    """Normalized words (voxloop_bench.recordings.normalize) with every number written in digits."""
    from voxloop_bench.recordings import normalize

    text = text.replace("’", "'")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    words: list[str] = []
    for token in re.sub(r"[^\w\s']", " ", text.lower().replace("-", " ")).split():
        token = token.strip("'")
        if token.isdigit():
            words.append(str(int(token)))  # normalize() would spell 206 digit by digit
        elif token:
            words.extend(normalize(token))
    return _numbers_as_digits(words)


def _numbers_as_digits(words: list[str]) -> list[str]:
    """Replace each run of spelled number words ("two hundred and six") by its digits."""
    out: list[str] = []
    run: list[str] = []
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ""
        starts_scale = word == "a" and following in _SCALES and not run
        # "two hundred and six" is one number; "ninety and six" is two
        joins = word == "and" and bool(run) and run[-1] in _SCALES and following in _SMALL
        if word in _SMALL or word in _SCALES or starts_scale or joins:
            run.append(word)
            continue
        out.extend(_run_values(run))
        run = []
        out.append(word)
    out.extend(_run_values(run))
    return out


def _run_values(run: list[str]) -> list[str]:
    """The numbers a run of number words says: usually one, two for "five six"."""
    groups: list[list[str]] = [[]]
    for word in run:
        if word in _SMALL and groups[-1] and not _can_follow(groups[-1][-1], word):
            groups.append([])
        groups[-1].append(word)
    values = [_value(group) for group in groups if group]
    return [str(v) for v in _join_years(values, groups)]


def _can_follow(previous: str, word: str) -> bool:
    """Whether `word` continues the number that `previous` is part of ("sixty" "nine")."""
    if previous in _SCALES or previous in ("a", "and"):
        return True
    return previous in _TENS and _SMALL[word] <= _UNIT_MAX and word != "zero"


def _value(group: list[str]) -> int:
    total = current = 0
    for word in group:
        if word in ("a", "and"):
            current = current or (1 if word == "a" else 0)
        elif word in _SCALES:
            if _SCALES[word] == _TWO_DIGITS:
                current = max(current, 1) * _TWO_DIGITS
            else:
                total, current = total + max(current, 1) * _SCALES[word], 0
        else:
            current += _SMALL[word]
    return total + current


def _join_years(values: list[int], groups: list[list[str]]) -> list[int]:
    """ "nineteen sixty nine" is 1969: two plain two-digit numbers said in a row."""
    if (
        len(values) == len(groups) == 2
        and all(_TEEN_MIN <= v < _TWO_DIGITS for v in values)
        and not any(w in _SCALES for g in groups for w in g)
    ):
        return [values[0] * _TWO_DIGITS + values[1]]
    return values


def _word_matches(said: str, accepted: str) -> bool:
    """The same word, or its plural ("legs" for "leg", "bodies" for "body")."""
    if said in (accepted, accepted + "s", accepted + "es"):
        return True
    return accepted.endswith("y") and said == accepted[:-1] + "ies"


def _contains(words: list[str], phrase: list[str]) -> bool:
    size = len(phrase)
    return size > 0 and any(
        all(_word_matches(words[i + k], accepted) for k, accepted in enumerate(phrase))
        for i in range(len(words) - size + 1)
    )


def judge(reply: str, answers: Sequence[Sequence[str]], max_words: int | None = None) -> bool:
    """Whether `reply` has one accepted alternative of every group (within `max_words`)."""
    words = canonical_words(reply)
    if max_words is not None and len(words) > max_words:
        return False
    return all(
        any(_contains(words, canonical_words(alternative)) for alternative in group)
        for group in answers
    )


# --- questions and voices ------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """An everyday question and the words a right answer contains."""

    id: str
    category: str
    text: str
    answers: list[list[str]]
    split: str

    def is_right(self, reply: str) -> bool:
        """Whether `reply` answers this question right."""
        brief = UNKNOWABLE_MAX_WORDS if self.category == UNKNOWABLE else None
        return judge(reply, self.answers, brief)


def load_questions(split: str | None = None, name: str = QUESTIONS_FILE) -> list[Question]:
    """The questions of benchmarks/answers/questions.json, or of `name` (of one split, if
    given)."""
    data = json.loads(data_file(name).read_text())
    questions = [
        Question(q["id"], q["category"], q["question"], q["answers"], q["split"])
        for q in data["questions"]
    ]
    return [q for q in questions if split is None or q.split == split]


def _flite(voice: str) -> Callable[[str, Path], list[str]]:
    return lambda text, out: ["flite", "-voice", voice, "-t", text, "-o", str(out)]


def _festival(voice: str) -> Callable[[str, Path], list[str]]:
    # text2wave reads the text from stdin; see _synthesize
    return lambda _text, out: ["text2wave", "-eval", f"(voice_{voice})", "-o", str(out)]


# voice name -> the command that writes `text` to a WAV file
VOICES: dict[str, Callable[[str, Path], list[str]]] = {
    "flite-kal": _flite("kal"),
    "flite-slt": _flite("slt"),
    "flite-rms": _flite("rms"),
    "flite-awb": _flite("awb"),
    "festival-ked": _festival("ked_diphone"),  # Debian festvox-kdlpc16k
}


def spoken_question(text: str, voice: str, cache_dir: Path) -> np.ndarray:
    """`text` said by `voice` (synthesized once, then read from the cache): 16 kHz mono."""
    from voxloop import audio

    if voice not in VOICES:
        raise VoxloopError(f"Unknown question voice {voice!r}; choose from {', '.join(VOICES)}.")
    key = hashlib.sha1(text.encode()).hexdigest()[:16]
    path = cache_dir / AUDIO_FOLDER / f"{voice}-{key}.wav"
    if not path.is_file():
        _synthesize(text, voice, path)
    return audio.load(path)


def _synthesize(text: str, voice: str, path: Path) -> None:
    partial = path.with_suffix(".part.wav")
    command = VOICES[voice](text, partial)
    if shutil.which(command[0]) is None:
        raise VoxloopError(
            f"{command[0]} is not installed: `apt-get install flite festival "
            "festvox-kdlpc16k` (or `make test`, which installs them)."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        command, input=text.encode(), check=True, capture_output=True, timeout=SYNTH_TIMEOUT_SECONDS
    )
    partial.replace(path)  # a cut-off run leaves no half-written file in the cache


# --- running -------------------------------------------------------------------------------


def measure(
    settings: Settings,
    *,
    model: str | None = None,
    system_prompt: str | None = None,
    temperature: float | None = None,
    modes: Sequence[str] = MODES,
    voices: Sequence[str] = DEFAULT_VOICES,
    split: str | None = None,
    reply_voice: str | None = None,
    rotate_voices: bool = False,
    questions_file: str = QUESTIONS_FILE,
) -> dict[str, Any]:
    """Ask every question (typed and/or spoken) through the pipeline; figures and every turn.

    Spoken, each question is asked by every voice, or with `rotate_voices` by one voice in
    turn, evenly over categories and splits: a third of the time with three voices.
    """
    from voxloop.pipeline import Pipeline

    settings = _configured(settings, model, system_prompt, temperature)
    questions = load_questions(split, questions_file)
    pipeline = Pipeline(settings)
    pipeline.warm_up(reply_voice)
    turns: list[dict[str, Any]] = []
    if "typed" in modes:
        turns += _ask_all(pipeline, [(q, None) for q in questions], reply_voice)
    if "spoken" in modes and rotate_voices:
        turns += _ask_all(pipeline, _rotated(questions, voices), reply_voice)
    elif "spoken" in modes:
        for voice in voices:
            turns += _ask_all(pipeline, [(q, voice) for q in questions], reply_voice)
    return {
        "config": {
            "model": settings.llm.model,
            "temperature": settings.llm.temperature,
            "system_prompt": settings.system_prompt,
            "reply_voice": reply_voice or settings.tts.voice,
            "stt_engine": settings.stt.engine,
            "split": split or "all",
            "questions_file": questions_file,
            "voices": list(voices) if "spoken" in modes else [],
            "rotate_voices": rotate_voices,
        },
        "questions": len(questions),
        **{mode: _report(turns, mode) for mode in modes},
        "peak_rss_mb": _peak_rss_mb(),
        "turns": turns,
    }


def _configured(
    settings: Settings, model: str | None, system_prompt: str | None, temperature: float | None
) -> Settings:
    llm: dict[str, Any] = {}
    if model is not None:
        llm["model"] = model
    if temperature is not None:
        llm["temperature"] = temperature
    update: dict[str, Any] = {"llm": settings.llm.model_copy(update=llm)}
    if system_prompt is not None:
        update["system_prompt"] = system_prompt
    return settings.model_copy(update=update)


def _rotated(questions: list[Question], voices: Sequence[str]) -> list[tuple[Question, str]]:
    """Each question with one voice, the voices taking turns within every category."""
    seen: Counter[str] = Counter()
    pairs = []
    for question in questions:
        n = seen[question.category]
        # shifted every round, so the voices also take turns on every third (held-out) question
        pairs.append((question, voices[(n + n // len(voices)) % len(voices)]))
        seen[question.category] += 1
    return pairs


def _ask_all(
    pipeline: Any, asks: Sequence[tuple[Question, str | None]], reply_voice: str | None
) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    voices = {voice or "typed" for _, voice in asks}
    with progress_bar(f"answers {', '.join(sorted(voices))}", "question", len(asks)) as bar:
        for question, voice in asks:
            turns.append(_ask(pipeline, question, voice, reply_voice))
            bar.set_postfix_str(f"{sum(t['right'] for t in turns)} right", refresh=False)
            bar.update()
    return turns


def _ask(
    pipeline: Any, question: Question, voice: str | None, reply_voice: str | None
) -> dict[str, Any]:
    """One question as a person asks it; a failed turn counts as a wrong answer."""
    from voxloop.turns import Done, TurnRequest

    if voice is None:
        request = TurnRequest(text=question.text, voice=reply_voice)
    else:
        samples = spoken_question(question.text, voice, pipeline.settings.cache_dir)
        request = TurnRequest(audio=samples, voice=reply_voice)
    result: dict[str, Any] = {
        "id": question.id,
        "category": question.category,
        "split": question.split,
        "mode": "typed" if voice is None else "spoken",
        "voice": voice,
        "question": question.text,
    }
    try:
        events = list(pipeline.run(request))
    except VoxloopError as err:
        return {**result, "heard": "", "reply": "", "right": False, "error": str(err)}
    done = events[-1]
    assert isinstance(done, Done)
    turn = done.turn
    return {
        **result,
        "heard": turn.user_text,
        "reply": turn.reply,
        "right": question.is_right(turn.reply),
        "skill": turn.skill,  # a skill answered instead of the model
        "timings_ms": {k: round(v, 1) for k, v in turn.timings_ms.items()},
    }


def _share(turns: Iterable[dict[str, Any]]) -> float | None:
    marks = [t["right"] for t in turns]
    return round(sum(marks) / len(marks), 4) if marks else None


def _by(turns: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for turn in turns:
        groups[turn[key]].append(turn)
    return groups


def _accuracy(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """Share right overall, per split, per category (and per category and split)."""
    return {
        "right": _share(turns),
        "turns": len(turns),
        "by_split": {split: _share(t) for split, t in sorted(_by(turns, "split").items())},
        "by_category": {
            category: {"all": _share(t), **{s: _share(x) for s, x in _by(t, "split").items()}}
            for category, t in _by(turns, "category").items()
        },
    }


def _timings(turns: list[dict[str, Any]]) -> dict[str, Any]:
    figures = {}
    for stage in ("stt", "llm_first_token", "first_audio", "total"):
        values = [t["timings_ms"][stage] for t in turns if stage in t.get("timings_ms", {})]
        if values:
            figures[f"{stage}_ms"] = {
                "p50": round(statistics.median(values)),
                "p95": round(_percentile(values, 0.95)),
            }
    return figures


def _report(turns: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    from voxloop_bench.recordings import wer

    mine = [t for t in turns if t["mode"] == mode]
    report = {
        **_accuracy(mine),
        **_timings(mine),
        "errors": sum("error" in t for t in mine),
        "answered_by_skills": dict(Counter(t["skill"] for t in mine if t.get("skill"))),
    }
    if mode == "spoken":
        report["wer"] = round(wer([(t["question"], t["heard"]) for t in mine]), 4)
        report["by_voice"] = {
            voice: {
                **_accuracy(t),
                "wer": round(wer([(x["question"], x["heard"]) for x in t]), 4),
                "first_audio_ms_p50": _timings(t).get("first_audio_ms", {}).get("p50"),
            }
            for voice, t in _by(mine, "voice").items()
        }
    return report


def _env_list(name: str, default: Sequence[str]) -> list[str]:
    value = os.environ.get(ENV_PREFIX + name, "")
    return [v.strip() for v in value.split(",") if v.strip()] or list(default)


@suite("answers")
def answers(settings: Settings) -> dict[str, Any]:
    """Everyday questions, typed and spoken by other engines' voices: the share answered right."""
    modes = _env_list("MODES", MODES)
    split = os.environ.get(ENV_PREFIX + "SPLIT") or None
    if set(modes) - set(MODES) or (split is not None and split not in SPLITS):
        raise VoxloopError(
            f"{ENV_PREFIX}MODES takes {', '.join(MODES)} and {ENV_PREFIX}SPLIT "
            f"{' or '.join(SPLITS)}; got {modes} and {split}."
        )
    return measure(
        settings,
        modes=modes,
        voices=_env_list("VOICES", DEFAULT_VOICES),
        split=split,
        reply_voice=os.environ.get(ENV_PREFIX + "REPLY_VOICE") or None,
        rotate_voices=os.environ.get(ENV_PREFIX + "ROTATE", "") not in ("", "0"),
        questions_file=os.environ.get(ENV_PREFIX + "FILE") or QUESTIONS_FILE,
    )
