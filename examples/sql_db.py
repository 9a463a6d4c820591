"""The SQL task's world: a small company database (SQLite, in memory), generated from a seed, and the one tool the
agent has over it.

Every task names its own database (`db_seed`), so an answer cannot be remembered from training: it has to be
queried. Standard library only: the agent's virtualenv holds its framework and lightwire-client, nothing of ours.
"""

from __future__ import annotations

import random
import sqlite3

DEPARTMENTS = ["Sales", "Engineering", "Support", "Finance", "Marketing"]
CITIES = ["Lisbon", "Osaka", "Denver", "Nairobi", "Tallinn"]
NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lena", "Mira", "Nico",
         "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tomas"]
PROJECTS = ["Atlas", "Beacon", "Comet", "Delta", "Ember", "Falcon"]
SCHEMA = (
    "CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, department TEXT, city TEXT, salary INTEGER, age INTEGER);\n"
    "CREATE TABLE projects (id INTEGER PRIMARY KEY, employee_id INTEGER REFERENCES employees(id), title TEXT, hours INTEGER);"
)
# What the agent sees of a result: enough rows for any question of the task, and never a whole dump into the context.
MAX_ROWS = 10


def build(seed: int, employees: int = 12) -> sqlite3.Connection:
    """The database of `seed`: `employees` people with a department, city, salary and age, and their project hours.
    Read-only once filled, so a query cannot change what the next one sees."""
    rng = random.Random(seed)
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.executescript(SCHEMA)
    people = rng.sample(NAMES, employees)
    for i, name in enumerate(people, start=1):
        conn.execute("INSERT INTO employees VALUES (?, ?, ?, ?, ?, ?)",
                     (i, name, rng.choice(DEPARTMENTS), rng.choice(CITIES), 1000 * rng.randint(30, 90), rng.randint(22, 64)))
    project_id = 0
    for i in range(1, employees + 1):
        for title in rng.sample(PROJECTS, rng.randint(1, 3)):
            project_id += 1
            conn.execute("INSERT INTO projects VALUES (?, ?, ?, ?)", (project_id, i, title, rng.randint(5, 60)))
    conn.commit()
    conn.execute("PRAGMA query_only = ON")
    return conn


def run_query(conn: sqlite3.Connection, query: str) -> str:
    """The rows of one query as text, a row a line with its values separated by ' | '; sqlite3.Error for SQL that
    does not run (the agent's tool reports it as the tool's error)."""
    cursor = conn.execute(query)
    rows = cursor.fetchmany(MAX_ROWS + 1)
    if not rows:
        return "(no rows)"
    lines = [" | ".join("NULL" if v is None else str(v) for v in row) for row in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        lines.append(f"... more than {MAX_ROWS} rows")
    return "\n".join(lines)
