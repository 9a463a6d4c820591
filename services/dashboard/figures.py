"""Pure shaping of the read API's rows into what the Overview, Training and Errors views draw."""

from __future__ import annotations

import math
from typing import Any

SPLIT_NAMES = {"eval": "held-out", "train": "train", "": "train"}
RATE_WINDOW_MS = 60_000
BUCKET_MS = 10_000


def learning_curve(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Reward by weight version per split: mean and 2 standard errors of the mean (None below two rollouts).

    A rollout counts under the newest version that served any of its calls (`max_model_version`); rollouts that made
    no call (version 0) have no version to plot.
    """
    series: dict[str, dict[int, dict[str, float]]] = {}
    for row in rows:
        version = int(row["model_version"] or 0)
        if version <= 0:
            continue
        split = SPLIT_NAMES.get(row["split"], row["split"])
        point = series.setdefault(split, {}).setdefault(version, {"n": 0, "sum": 0.0, "sq": 0.0})
        # Rows are per (version, split) already, but train and "" share a name: pool them exactly.
        n, mean, std = int(row["rollouts"]), float(row["reward_mean"] or 0.0), row["reward_std"]
        var = float(std) ** 2 if std is not None and math.isfinite(float(std)) else 0.0
        point["n"] += n
        point["sum"] += n * mean
        point["sq"] += (n - 1) * var + n * mean * mean
    out: dict[str, list[dict[str, Any]]] = {}
    for split, points in series.items():
        out[split] = []
        for version in sorted(points):
            p = points[version]
            n, mean = p["n"], p["sum"] / p["n"]
            se = math.sqrt(max(0.0, (p["sq"] - n * mean * mean) / (n - 1)) / n) if n > 1 else None
            out[split].append({"version": version, "rollouts": n, "mean": mean, "se": se,
                               "low": None if se is None else mean - 2 * se, "high": None if se is None else mean + 2 * se})
    return dict(sorted(out.items(), key=lambda kv: (kv[0] != "train", kv[0])))


def rates(buckets: list[dict[str, Any]], key: str, now_ms: int) -> dict[str, Any]:
    """Per-second rate over the last minute and a per-bucket series (10 s buckets) of the last ten minutes."""
    recent = sum(b[key] for b in buckets if b["t_ms"] + BUCKET_MS > now_ms - RATE_WINDOW_MS)
    return {"per_s": recent / (RATE_WINDOW_MS / 1000), "series": [{"t_ms": b["t_ms"], "per_s": b[key] / (BUCKET_MS / 1000)} for b in buckets]}


def error_rates(by_class: list[dict[str, Any]], total_rollouts: int) -> list[dict[str, Any]]:
    """Each error class with the share of rollouts that had it."""
    return [{**row, "rate": row["rollouts"] / total_rollouts if total_rollouts else None} for row in by_class]


def served_versions(live: dict[str, Any], by_gateway: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each inference replica serves now (asked), else what the latest calls through each gateway got."""
    asked = [{"replica": r["url"], "version": r.get("model_version"), "model": r.get("model"), "up": r["up"], "source": "health"}
             for r in live.get("inference") or ()]
    if any(r["up"] for r in asked):
        return asked
    seen = [{"replica": f"via gateway {g['gateway_id'] or '?'}", "version": g["model_version"], "model": g["model"], "up": None,
             "source": "latest call", "at_ms": g["last_call_ms"]} for g in by_gateway]
    return seen or asked


def error_matrix(by_step: list[dict[str, Any]]) -> dict[str, Any]:
    """Class x step counts as a dense matrix (classes by total, steps ascending) for the heat map."""
    classes: dict[str, int] = {}
    steps: set[int] = set()
    cells: dict[tuple[str, int], int] = {}
    for row in by_step:
        classes[row["error_class"]] = classes.get(row["error_class"], 0) + row["errors"]
        steps.add(int(row["step"]))
        cells[(row["error_class"], int(row["step"]))] = row["errors"]
    ordered = sorted(classes, key=lambda c: (-classes[c], c))
    columns = sorted(steps)
    return {"classes": ordered, "steps": columns, "totals": [classes[c] for c in ordered],
            "counts": [[cells.get((c, s), 0) for s in columns] for c in ordered], "max": max(cells.values(), default=0)}


def errors_by_version(by_version: list[dict[str, Any]], rollouts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per weight version: rollouts, and for each class the errors and the share of that version's rollouts hit."""
    totals = {int(r["model_version"]): int(r["rollouts"]) for r in rollouts}
    out: dict[int, dict[str, Any]] = {}
    for row in by_version:
        v = int(row["model_version"])
        entry = out.setdefault(v, {"version": v, "rollouts": totals.get(v, 0), "classes": {}})
        entry["classes"][row["error_class"]] = {"errors": row["errors"], "rollouts": row["rollouts"],
                                                "rate": row["rollouts"] / entry["rollouts"] if entry["rollouts"] else None}
    for v, n in totals.items():
        out.setdefault(v, {"version": v, "rollouts": n, "classes": {}})
    return [out[v] for v in sorted(out)]
