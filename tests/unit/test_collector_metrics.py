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
