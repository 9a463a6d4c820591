"""The collector's Prometheus counters follow the counts its processors keep (no parsing of event ids)."""

from prometheus_client import CollectorRegistry

from lightwire.services.collector.metrics import CollectorMetrics


def test_followed_counters_add_what_the_processor_counted_since_last_time():
    registry = CollectorRegistry()
    metrics = CollectorMetrics(registry)
    metrics.trajectories.follow(3)
    metrics.trajectories.follow(3)
    metrics.trajectories.follow(5)
    metrics.late.follow(1)
    assert registry.get_sample_value("lw_collector_trajectories_total") == 5
    assert registry.get_sample_value("lw_collector_late_rewards_total") == 1
    assert registry.get_sample_value("lw_collector_batches_total") == 0


def test_group_outcomes_follow_the_processors_counts_by_label():
    registry = CollectorRegistry()
    metrics = CollectorMetrics(registry)
    metrics.groups.follow({"batched": 2})
    metrics.groups.follow({"batched": 3, "uniform_dropped": 4})
    metrics.groups.follow({"batched": 3, "uniform_dropped": 4})
    assert registry.get_sample_value("lw_collector_groups_total", {"outcome": "batched"}) == 3
    assert registry.get_sample_value("lw_collector_groups_total", {"outcome": "uniform_dropped"}) == 4
