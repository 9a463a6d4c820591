"""The demo's dataset: arithmetic word problems, generated from a seed, with train and held-out splits."""

from __future__ import annotations

import random

from lightwire.tools.tasks.problem import Problem

NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lena"]
THINGS = ["apples", "books", "coins", "stamps", "marbles", "pencils", "shells", "cards"]


def _problem(rng: random.Random, task_id: str, split: str) -> Problem:
    name, other = rng.sample(NAMES, 2)
    thing = rng.choice(THINGS)
    a, b = rng.randint(12, 99), rng.randint(3, 40)
    kind = rng.choice(["add", "sub", "mul", "two_step"])
    if kind == "add":
        q, ans = f"{name} has {a} {thing}. {other} gives {name} {b} more. How many {thing} does {name} have now?", a + b
    elif kind == "sub":
        q, ans = f"{name} has {a + b} {thing} and gives {b} of them to {other}. How many {thing} does {name} have left?", a
    elif kind == "mul":
        k = rng.randint(3, 12)
        q, ans = f"{name} buys {k} boxes with {b} {thing} in each box. How many {thing} does {name} buy?", k * b
    else:
        k = rng.randint(2, 6)
        q, ans = (f"{name} has {a} {thing}, buys {k} packs of {b} {thing}, and then gives {other} 10 {thing}. "
                  f"How many {thing} does {name} have?"), a + k * b - 10
    return Problem(task_id, q, ans, split, kind=kind)


def generate(n_train: int, n_eval: int, seed: int = 0) -> list[Problem]:
    """Disjoint splits from one seeded stream: held-out problems are never trained on."""
    rng = random.Random(seed)
    problems, seen = [], set()
    while len(problems) < n_train + n_eval:
        split = "train" if len(problems) < n_train else "eval"
        p = _problem(rng, f"{split}-{len(problems):05d}", split)
        if p.question not in seen:
            seen.add(p.question)
            problems.append(p)
    return problems

