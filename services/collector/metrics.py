"""The collector's Prometheus metrics: one registry per Collector, so tests and several instances never share counts.

The trajectory, batch and late-reward counters follow tallies the processors keep themselves, rather than being
counted a second time here from the events.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class FollowedCounter:
    """A Prometheus counter that follows a count kept elsewhere (a processor's own tally), by its increments."""

    def __init__(self, counter: Counter):
        self.counter = counter
        self.seen = 0

    def follow(self, count: int) -> None:
        if count > self.seen:
            self.counter.inc(count - self.seen)
            self.seen = count


class FollowedCounts:
    """A labelled Prometheus counter that follows counts kept elsewhere by label value (a processor's tally per outcome)."""

    def __init__(self, counter: Counter):
        self.counter = counter
        self.followed: dict[str, FollowedCounter] = {}

    def follow(self, counts: dict[str, int]) -> None:
        for label, count in counts.items():
            followed = self.followed.get(label)
            if followed is None:
                followed = self.followed[label] = FollowedCounter(self.counter.labels(label))
            followed.follow(count)


@dataclass
class CollectorMetrics:
    registry: CollectorRegistry

    def __post_init__(self) -> None:
        r = self.registry
        self.events_in = Counter("lw_collector_events_total", "Events consumed, by topic kind", ["kind"], registry=r)
        self.dead_letters = Counter("lw_collector_dead_letters_total", "Records sent to the dead-letter topic", registry=r)
        # Counted where they happen (RolloutProcessor, GroupProcessor); these follow those counts.
        self.trajectories = FollowedCounter(Counter("lw_collector_trajectories_total", "Trajectories released", registry=r))
        self.batches = FollowedCounter(Counter("lw_collector_batches_total", "Training batches released", registry=r))
        self.groups = FollowedCounts(Counter(
            "lw_collector_groups_total", "GRPO groups released, by outcome: batched, uniform_dropped (all rewards alike: no "
            "gradient), timeout_dropped, dropped_failed", ["outcome"], registry=r))
        self.rows = Counter("lw_collector_analytics_rows_total", "Analytics rows inserted", registry=r)
        self.late = FollowedCounter(Counter("lw_collector_late_rewards_total", "Rewards and feedback that arrived after release", registry=r))
        self.late_events = FollowedCounter(Counter(
            "lw_collector_late_events_total", "Calls and spans that arrived after their trajectory (analytics only)", registry=r))
        self.pending = Gauge("lw_collector_pending_rollouts", "Rollouts held in this instance's table", registry=r)
        self.stage_seconds = Histogram(
            "lw_collector_stage_seconds", "Time per micro-batch stage", ["stage"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
