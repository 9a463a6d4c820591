"""The SQL task's dataset: questions about each task's own generated company database, with train and held-out
splits. Each answer is what the question's reference query returns on that database (run here, never written by
hand), so a question and its answer cannot disagree."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from lightwire.examples.sql_db import CITIES, DEPARTMENTS, PROJECTS, build


@dataclass(frozen=True)
class Problem:
    task_id: str
    question: str
    answer: int
    split: str
    db_seed: int
    query: str  # the reference query the answer came from (for a person reading a failure, never shown to the agent)


Template = Callable[[random.Random, list[str]], tuple[str, str]]


def _count_department(rng: random.Random, names: list[str]) -> tuple[str, str]:
    d = rng.choice(DEPARTMENTS)
    return f"How many employees work in the {d} department?", f"SELECT COUNT(*) FROM employees WHERE department = '{d}'"


def _count_city(rng: random.Random, names: list[str]) -> tuple[str, str]:
    c = rng.choice(CITIES)
    return f"How many employees live in {c}?", f"SELECT COUNT(*) FROM employees WHERE city = '{c}'"


def _salary_of(rng: random.Random, names: list[str]) -> tuple[str, str]:
    n = rng.choice(names)
    return f"What is {n}'s salary?", f"SELECT salary FROM employees WHERE name = '{n}'"


def _age_of(rng: random.Random, names: list[str]) -> tuple[str, str]:
    n = rng.choice(names)
    return f"How old is {n}?", f"SELECT age FROM employees WHERE name = '{n}'"


def _older_than(rng: random.Random, names: list[str]) -> tuple[str, str]:
    a = rng.randint(30, 55)
    return f"How many employees are older than {a}?", f"SELECT COUNT(*) FROM employees WHERE age > {a}"


def _max_salary(rng: random.Random, names: list[str]) -> tuple[str, str]:
    d = rng.choice(DEPARTMENTS)
    return (f"What is the highest salary in the {d} department?",
            f"SELECT MAX(salary) FROM employees WHERE department = '{d}'")


def _hours_of(rng: random.Random, names: list[str]) -> tuple[str, str]:
    n = rng.choice(names)
    return (f"How many hours has {n} worked on projects in total?",
            f"SELECT SUM(p.hours) FROM projects p JOIN employees e ON p.employee_id = e.id WHERE e.name = '{n}'")


def _project_people(rng: random.Random, names: list[str]) -> tuple[str, str]:
    t = rng.choice(PROJECTS)
    return f"How many employees work on the {t} project?", f"SELECT COUNT(DISTINCT employee_id) FROM projects WHERE title = '{t}'"


# One-table lookups and counts, then a join: the base model writes the first kind now and then, the join rarely.
TEMPLATES: tuple[Template, ...] = (_count_department, _count_city, _salary_of, _age_of, _older_than, _max_salary, _hours_of,
                                   _project_people)


def _problem(rng: random.Random, task_id: str, split: str) -> Problem | None:
    db_seed = rng.randrange(2**31)
    conn = build(db_seed)
    names = [n for (n,) in conn.execute("SELECT name FROM employees")]
    question, query = rng.choice(TEMPLATES)(rng, names)
    (answer,) = conn.execute(query).fetchone()
    conn.close()
    # A question whose answer is NULL (no such department here) has no number to match.
    return None if answer is None else Problem(task_id, question, int(answer), split, db_seed, query)


def generate(n_train: int, n_eval: int, seed: int = 0) -> list[Problem]:
    """Disjoint splits from one seeded stream, each problem on its own database: held-out problems are never
    trained on, nor are their databases."""
    rng = random.Random(seed)
    problems: list[Problem] = []
    while len(problems) < n_train + n_eval:
        split = "train" if len(problems) < n_train else "eval"
        p = _problem(rng, f"sql-{split}-{len(problems):05d}", split)
        if p is not None:
            problems.append(p)
    return problems
