"""Galaxy Zoo decision trees as data: questions, answers, dependencies and catalog column names.

The trees live in ``alertlib/schemas/*.yaml``; code never hard-codes a question. The vote simulator
and the Dirichlet-multinomial loss both read the same schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from alertlib.core.errors import DataNotFound

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


@dataclass(frozen=True)
class Question:
    name: str
    answers: tuple[str, ...]
    asked_if: tuple[str, str] | None  # (question, answer) that leads here; None = always asked

    def columns(self, suffix: str) -> list[str]:
        """Catalog column names of this question's answers, e.g. ``smooth-or-featured-dr5_smooth``."""
        return [f"{self.name}{suffix}_{answer}" for answer in self.answers]


@dataclass(frozen=True)
class Schema:
    name: str
    suffix: str
    questions: tuple[Question, ...]

    @property
    def answer_columns(self) -> list[str]:
        """Every answer column, question by question, in schema order."""
        return [c for q in self.questions for c in q.columns(self.suffix)]

    @property
    def question_slices(self) -> list[slice]:
        """For each question, the slice of ``answer_columns`` that holds its answers."""
        slices, start = [], 0
        for question in self.questions:
            slices.append(slice(start, start + len(question.answers)))
            start += len(question.answers)
        return slices

    def column(self, question: str, answer: str) -> str:
        return f"{question}{self.suffix}_{answer}"

    def question(self, name: str) -> Question:
        for question in self.questions:
            if question.name == name:
                return question
        raise KeyError(f"schema {self.name} has no question {name!r}")


@cache
def load_schema(name: str = "gz_decals_dr5") -> Schema:
    """Load a decision tree from ``alertlib/schemas/<name>.yaml``."""
    path = SCHEMA_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in SCHEMA_DIR.glob("*.yaml"))
        raise DataNotFound(f"no Galaxy Zoo schema {name!r} ({path}); known schemas: {known}")
    raw = yaml.safe_load(path.read_text())
    questions = tuple(
        Question(q["name"], tuple(str(a) for a in q["answers"]), tuple(q["asked_if"]) if q["asked_if"] else None)
        for q in raw["questions"]
    )
    return Schema(raw["name"], raw["suffix"], questions)
