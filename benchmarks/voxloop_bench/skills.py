"""`voxloop bench skills`: are the skills' phrasings handled right, typed and spoken, and do
skills stay silent on ordinary questions?

Each phrasing of benchmarks/skills/phrasings.json is said by voices of engines voxloop does not
speak with, transcribed by the configured engine, and given to the skills with a fresh session
(its timers and facts set up first). Handled right: the named skill answers, with the expected
words. False fires: any skill answering a question of the answers suite outside its arithmetic and
unknowable categories (benchmarks/answers/questions.json).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, cast

from voxloop import skills
from voxloop.config import Settings
from voxloop_bench import data_file, progress, progress_bar, suite
from voxloop_bench.answers import (
    DEFAULT_VOICES,
    PERSONAL_FILE,
    load_questions,
    spoken_question,
)
from voxloop_bench.recordings import normalize

PHRASINGS_FILE = "skills/phrasings.json"
# The answers suite's categories that a skill should answer: sums, and what no model can know.
SKILL_CATEGORIES = ("arithmetic", "unknowable")


@suite("skills")
def skills_suite(settings: Settings) -> dict[str, Any]:
    """Share of phrasings handled right per skill (typed, and spoken per voice); false fires."""
    from voxloop.pipeline import Pipeline

    data = json.loads(data_file(PHRASINGS_FILE).read_text())
    pipeline = Pipeline(settings)

    def hear(voice: str) -> Any:
        def heard(text: str) -> str:  # as the pipeline hears a turn: a skill may take a reading
            transcript = pipeline.transcribe(spoken_question(text, voice, settings.cache_dir))
            return skills.chosen_reading(transcript.text, transcript.readings, skills.now(None))

        return heard

    report: dict[str, Any] = {
        "false_fires": false_fires(),
        "unknowable": unknowable_questions(),
        "tool_calling": tool_calling(settings),
    }
    splits = (
        ("tune", data["skills"]),
        ("revision", data["revision"]),
        ("heldout", data["heldout"]),
    )
    for split, phrasings in splits:
        facts = data["recall_facts"]
        runs = {"typed": _run(phrasings, facts, lambda text: text, f"skills {split} typed")}
        for voice in DEFAULT_VOICES:
            runs[voice] = _run(phrasings, facts, hear(voice), f"skills {split} {voice}")
        report[split] = {
            "phrasings": {name: len(items) for name, items in phrasings.items()},
            "handled_right": {mode: _shares(results) for mode, results in runs.items()},
            "spoken_handled_right": _shares(
                [r for mode, results in runs.items() if mode != "typed" for r in results]
            ),
            "failures": {mode: [r for r in rs if not r["right"]] for mode, rs in runs.items()},
        }
    return report


def _run(
    phrasings: dict[str, Any], facts: list[str], hear: Any, description: str
) -> list[dict[str, Any]]:
    results = []
    total = sum(len(items) for items in phrasings.values())
    with (
        tempfile.TemporaryDirectory() as folder,
        progress_bar(description, "phrasing", total) as bar,
    ):
        memory = _memory(Path(folder))
        for name, items in phrasings.items():
            for number, item in enumerate(items):
                session = f"{name}-{number}"
                _set_up(memory, session, item, facts if name == "recall" else [])
                heard = hear(item["text"])
                results.append(judge(name, item, heard, memory, session))
                bar.update()
    return results


def _memory(folder: Path) -> Any:
    from voxloop.memory import Memory

    return Memory(folder / "bench.db")


def _set_up(memory: Any, session: str, item: dict[str, Any], facts: list[str]) -> None:
    from voxloop.turns import Turn

    now = skills.now(None).timestamp()
    for label, seconds in item.get("setup", []):
        memory.add_timer(session, "timer", label, seconds, now)
    for fact in facts:
        memory.add_turn(session, Turn(user_text=fact, reply="Noted."))


def judge(name: str, item: dict[str, Any], heard: str, memory: Any, session: str) -> dict[str, Any]:
    """Whether skill `name` answered `heard` with the expected words."""
    now = skills.now(None)
    answer = skills.answer(heard, skills.SkillContext(now, session, memory))
    said = " ".join(normalize(answer.text)) if answer else ""
    expected = [" ".join(normalize(_filled(word, now))) for word in item["expect"]]
    right = answer is not None and answer.skill == name
    right = right and all(f" {word} " in f" {said} " for word in expected)
    return {
        "skill": name, "text": item["text"], "heard": heard, "right": right,
        "answered_by": answer.skill if answer else None, "answer": answer.text if answer else None,
    }  # fmt: skip


def _filled(word: str, now: Any) -> str:
    hour = now.hour % 12 or 12
    return word.format(
        hour=hour, minute=now.minute, weekday=f"{now:%A}", month=f"{now:%B}", day=now.day,
        year=now.year,
    )  # fmt: skip


def _shares(results: list[dict[str, Any]]) -> dict[str, Any]:
    by_skill: dict[str, list[bool]] = {}
    for result in results:
        by_skill.setdefault(result["skill"], []).append(result["right"])
    shares = {name: round(sum(r) / len(r), 3) for name, r in by_skill.items()}
    every = [r["right"] for r in results]
    return {"all": round(sum(every) / len(every), 3), **shares}


def false_fires() -> dict[str, Any]:
    """Skills answering ordinary questions of the answers suite (typed)."""
    questions = [q for q in load_questions() if q.category not in SKILL_CATEGORIES]
    context = skills.SkillContext(skills.now(None))
    fired = []
    for question in questions:
        if answer := skills.answer(question.text, context):
            right = question.is_right(answer.text)
            fired.append({"question": question.text, "answer": answer.text, "right": right})
    wrong = [f for f in fired if not f["right"]]
    return {
        "questions": len(questions),
        "fired": len(fired),
        "share": round(len(fired) / max(len(questions), 1), 4),
        "fired_wrongly": len(wrong),
        "share_wrongly": round(len(wrong) / max(len(questions), 1), 4),
        "which": fired,
    }


def unknowable_questions() -> dict[str, Any]:
    """Per split of benchmarks/answers/personal.json: the share of unknowable questions that
    the `unknowable` skill answers, and of answerable ones that it (wrongly) answers."""
    context = skills.SkillContext(skills.now(None))
    report: dict[str, Any] = {}
    for question in load_questions(name=PERSONAL_FILE):
        answered = skills.answer(question.text, context)
        fired = answered is not None and answered.skill == "unknowable"
        shares = report.setdefault(question.split, {}).setdefault(question.category, [])
        shares.append({"question": question.text, "fired": fired})
    return {
        split: {
            category: {
                "share_fired": round(sum(r["fired"] for r in rs) / len(rs), 3),
                "missed" if category == "unknowable" else "fired": [
                    r["question"] for r in rs if r["fired"] != (category == "unknowable")
                ],
            }
            for category, rs in by_category.items()
        }
        for split, by_category in report.items()
    }


# --- the alternative: the model's own tool calling -----------------------------------------

TOOL_SAMPLE = 10  # phrasings per skill sent to the model (each is a full model call)
TOOL_ORDINARY_SAMPLE = 40  # ordinary questions, for false fires
TOOL_MAX_TOKENS = 60
TOOLS: dict[str, tuple[str, str, dict[str, Any]]] = {  # name -> (skill, description, parameters)
    "get_time": ("clock", "The current time.", {}),
    "get_date": ("clock", "Today's date and day of the week, month or year.", {}),
    "set_timer": ("timers", "Start a timer or a reminder.", {
        "seconds": {"type": "integer"}, "label": {"type": "string"}}),
    "list_timers": ("timers", "The running timers and how long each has left.", {}),
    "cancel_timer": ("timers", "Cancel a timer.", {"label": {"type": "string"}}),
    "calculate": ("arithmetic", "Compute an arithmetic expression.", {
        "expression": {"type": "string"}}),
    "convert_units": ("units", "Convert a quantity between units.", {
        "value": {"type": "number"}, "from_unit": {"type": "string"},
        "to_unit": {"type": "string"}}),
    "recall_facts": ("recall", "What is remembered about the user.", {}),
}  # fmt: skip


def tool_calling(settings: Settings) -> dict[str, Any]:
    """The same phrasings (typed) answered by the in-process model with tools offered: the share
    where it calls a tool of the right skill, false calls on ordinary questions, first token."""
    import re
    import statistics
    import time

    from llama_cpp import Llama

    from voxloop import assets
    from voxloop.prompts import build_messages

    llama = Llama(
        model_path=str(assets.gguf_path(settings.llm.model, settings.cache_dir)),
        n_ctx=settings.llm.context_tokens, n_threads=settings.llm.threads, verbose=False,
    )  # fmt: skip
    tools = [
        {"type": "function", "function": {"name": name, "description": description,
         "parameters": {"type": "object", "properties": parameters}}}
        for name, (_skill, description, parameters) in TOOLS.items()
    ]  # fmt: skip
    called = re.compile(r'"name"\s*:\s*"(\w+)"')

    def ask(text: str) -> tuple[str | None, float]:
        messages = build_messages(settings.system_prompt, [], text)
        started = time.perf_counter()
        first = None
        reply = ""
        chunks: Any = llama.create_chat_completion(
            messages=cast(Any, messages), tools=cast(Any, tools), max_tokens=TOOL_MAX_TOKENS,
            temperature=0.0, stream=True,
        )  # fmt: skip
        for chunk in chunks:
            first = first or time.perf_counter() - started
            reply += chunk["choices"][0]["delta"].get("content") or ""
        match = called.search(reply) if "tool_call" in reply else None
        return (match.group(1) if match else None), (first or 0.0) * 1000

    data = json.loads(data_file(PHRASINGS_FILE).read_text())
    right: dict[str, list[bool]] = {}
    first_tokens = []
    for name, items in progress(data["skills"].items(), "skills tool calling", "skill"):
        for item in items[:TOOL_SAMPLE]:
            tool, first_ms = ask(item["text"])
            first_tokens.append(first_ms)
            right.setdefault(name, []).append(tool is not None and TOOLS[tool][0] == name)
    ordinary = [q for q in load_questions() if q.category not in SKILL_CATEGORIES]
    false_calls = sum(ask(q.text)[0] is not None for q in ordinary[:TOOL_ORDINARY_SAMPLE])
    every = [r for results in right.values() for r in results]
    return {
        "model": settings.llm.model,
        "right_tool": {"all": round(sum(every) / len(every), 3)}
        | {name: round(sum(r) / len(r), 3) for name, r in right.items()},
        "false_calls": f"{false_calls} of {min(len(ordinary), TOOL_ORDINARY_SAMPLE)}",
        "first_token_ms_p50": round(statistics.median(first_tokens)),
    }
