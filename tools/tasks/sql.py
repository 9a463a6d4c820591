"""The SQL task's dataset: questions about each task's own generated company database, with train and held-out
splits. Each answer is what the question's reference query returns on that database (run here, never written by
hand), so a question and its answer cannot disagree."""

from __future__ import annotations

import random
from dataclasses import dataclass

from lightwire.examples.sql_db import CITIES, DEPARTMENTS, PROJECTS, build
from lightwire.tools.tasks.problem import Problem


@dataclass(frozen=True)
class SqlProblem(Problem):
    db_seed: int
    query: str  # the reference query the answer came from (for a person reading a failure, never shown to the agent)


@dataclass(frozen=True)
class Template:
    """A question and its reference query, both with one slot `{v}` filled from `pool`."""

    question: str
    query: str
    pool: str  # department, city, name, project or age
    kind: str  # the problems' kind (Problem.kind)


def _draw(rng: random.Random, pool: str, names: list[str]) -> str:
    if pool == "age":
        return str(rng.randint(30, 55))
    return rng.choice({"department": DEPARTMENTS, "city": CITIES, "name": names, "project": PROJECTS}[pool])


# One-table lookups and counts, then a join: the base model writes the first kind now and then, the join rarely.
TEMPLATES: tuple[Template, ...] = (
    Template("How many employees work in the {v} department?",
             "SELECT COUNT(*) FROM employees WHERE department = '{v}'", "department", "count_department"),
    Template("How many employees live in {v}?", "SELECT COUNT(*) FROM employees WHERE city = '{v}'", "city", "count_city"),
    Template("What is {v}'s salary?", "SELECT salary FROM employees WHERE name = '{v}'", "name", "salary"),
    Template("How old is {v}?", "SELECT age FROM employees WHERE name = '{v}'", "name", "age"),
    Template("How many employees are older than {v}?", "SELECT COUNT(*) FROM employees WHERE age > {v}", "age", "count_older"),
    Template("What is the highest salary in the {v} department?",
             "SELECT MAX(salary) FROM employees WHERE department = '{v}'", "department", "max_salary"),
    Template("How many hours has {v} worked on projects in total?",
             "SELECT SUM(p.hours) FROM projects p JOIN employees e ON p.employee_id = e.id WHERE e.name = '{v}'", "name", "join_hours"),
    Template("How many employees work on the {v} project?",
             "SELECT COUNT(DISTINCT employee_id) FROM projects WHERE title = '{v}'", "project", "count_project"),
)


def _problem(rng: random.Random, task_id: str, split: str) -> SqlProblem | None:
    db_seed = rng.randrange(2**31)
    conn = build(db_seed)
    names = [n for (n,) in conn.execute("SELECT name FROM employees")]
    template = rng.choice(TEMPLATES)
    v = _draw(rng, template.pool, names)
    question, query = template.question.format(v=v), template.query.format(v=v)
    (answer,) = conn.execute(query).fetchone()
    conn.close()
    # A question whose answer is NULL (no such department here) has no number to match.
    return None if answer is None else SqlProblem(task_id, question, int(answer), split, db_seed, query, kind=template.kind)


def generate(n_train: int, n_eval: int, seed: int = 0) -> list[SqlProblem]:
    """Disjoint splits from one seeded stream, each problem on its own database: held-out problems are never
    trained on, nor are their databases."""
    rng = random.Random(seed)
    problems: list[SqlProblem] = []
    while len(problems) < n_train + n_eval:
        split = "train" if len(problems) < n_train else "eval"
        p = _problem(rng, f"sql-{split}-{len(problems):05d}", split)
        if p is not None:
            problems.append(p)
    return problems
