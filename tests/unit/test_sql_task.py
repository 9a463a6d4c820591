"""The SQL task's databases and questions: seeded, split without overlap, and every answer what the rows say,
recomputed here in Python from the rows rather than by the question's own query."""

from __future__ import annotations

import re
import sqlite3

import pytest

from lightwire.examples.sql_db import MAX_ROWS, build, run_query
from lightwire.tools.tasks.sql import generate


def rows(conn: sqlite3.Connection) -> tuple[list[dict], list[dict]]:
    cur = conn.execute("SELECT id, name, department, city, salary, age FROM employees")
    employees = [dict(zip(("id", "name", "department", "city", "salary", "age"), r)) for r in cur]
    projects = [dict(zip(("employee_id", "title", "hours"), r)) for r in conn.execute("SELECT employee_id, title, hours FROM projects")]
    return employees, projects


def expected(question: str, employees: list[dict], projects: list[dict]) -> int | None:
    by_name = {e["name"]: e for e in employees}
    patterns = [
        (r"How many employees work in the (\w+) department\?", lambda d: sum(e["department"] == d for e in employees)),
        (r"How many employees live in (\w+)\?", lambda c: sum(e["city"] == c for e in employees)),
        (r"What is (\w+)'s salary\?", lambda n: by_name[n]["salary"]),
        (r"How old is (\w+)\?", lambda n: by_name[n]["age"]),
        (r"How many employees are older than (\d+)\?", lambda a: sum(e["age"] > int(a) for e in employees)),
        (r"What is the highest salary in the (\w+) department\?",
         lambda d: max((e["salary"] for e in employees if e["department"] == d), default=None)),
        (r"How many hours has (\w+) worked on projects in total\?",
         lambda n: sum(p["hours"] for p in projects if p["employee_id"] == by_name[n]["id"])),
        (r"How many employees work on the (\w+) project\?", lambda t: len({p["employee_id"] for p in projects if p["title"] == t})),
    ]
    for pattern, answer in patterns:
        if m := re.fullmatch(pattern, question):
            return answer(m.group(1))
    raise AssertionError(f"a question of no known kind: {question}")


def test_problems_are_seeded_split_apart_and_each_on_its_own_database():
    problems = generate(60, 20, seed=3)
    assert generate(60, 20, seed=3) == problems
    assert generate(60, 20, seed=4) != problems
    assert [p.split for p in problems] == ["train"] * 60 + ["eval"] * 20
    assert len({p.task_id for p in problems}) == 80
    train = {p.db_seed for p in problems if p.split == "train"}
    held_out = {p.db_seed for p in problems if p.split == "eval"}
    assert not train & held_out  # a held-out question is never asked of a database trained on
    kinds = {re.sub(r"\b[A-Z]\w+|\d+", "X", p.question) for p in problems}
    assert len(kinds) == 8


def test_every_answer_is_what_the_rows_of_its_database_say():
    for p in generate(150, 30, seed=0):
        employees, projects = rows(build(p.db_seed))
        assert expected(p.question, employees, projects) == p.answer, p


def test_a_database_is_the_same_for_its_seed_and_cannot_be_written():
    a, b = build(7), build(7)
    assert rows(a) == rows(b) and rows(a) != rows(build(8))
    employees, projects = rows(a)
    assert len(employees) == 12 and len({e["name"] for e in employees}) == 12
    assert all(1 <= sum(p["employee_id"] == e["id"] for p in projects) <= 3 for e in employees)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        a.execute("DELETE FROM employees")
    assert len(rows(a)[0]) == 12


def test_a_query_s_rows_as_the_agent_reads_them():
    conn = build(7)
    first = rows(conn)[0][0]
    assert run_query(conn, "SELECT name, age FROM employees WHERE id = 1") == f"{first['name']} | {first['age']}"
    assert run_query(conn, "SELECT name FROM employees WHERE age > 200") == "(no rows)"
    assert run_query(conn, "SELECT NULL") == "NULL"
    many = run_query(conn, "SELECT id FROM employees ORDER BY id").splitlines()
    assert many == [str(i) for i in range(1, MAX_ROWS + 1)] + [f"... more than {MAX_ROWS} rows"]
    with pytest.raises(sqlite3.OperationalError, match="no such column: wage"):
        run_query(conn, "SELECT wage FROM employees")
