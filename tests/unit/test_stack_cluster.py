"""`stack up --brokers 3`: the nodes' ports and configs, one cluster id, replication flowing from the settings."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from lightwire import topics
from lightwire.tools.stack import kafka_broker
from lightwire.tools.stack.kafka_broker import BrokerError, KafkaCluster
from lightwire.tools.stack.local_stack import LocalStack
from lightwire.tools.stack.ports import _lightwire_state_dir
from lightwire.tools.stack.settings import StackSettings


def three(tmp_path: Path, **kw) -> StackSettings:
    return StackSettings(stack_brokers=3, state_dir=tmp_path, cache_dir=tmp_path / "cache", kafka_port=18092,
                         kafka_controller_port=18093, **kw)


def properties(node) -> dict[str, str]:
    return dict(line.split("=", 1) for line in node.config_file.read_text().splitlines())


def test_three_brokers_replicate_three_times_with_two_in_sync_unless_told_otherwise(tmp_path, monkeypatch):
    assert StackSettings().replication() == topics.Replication(1, 1)
    assert three(tmp_path).replication() == topics.Replication(3, 2)
    assert StackSettings(stack_brokers=5).replication() == topics.Replication(3, 2)
    monkeypatch.setenv("LW_STACK_BROKERS", "3")
    assert StackSettings().replication() == topics.Replication(3, 2)
    monkeypatch.setenv("LW_TOPIC_REPLICATION", "2")
    monkeypatch.setenv("LW_TOPIC_MIN_INSYNC_REPLICAS", "1")
    assert StackSettings().replication() == topics.Replication(2, 1)


def test_more_copies_in_sync_than_exist_or_nodes_sharing_ports_are_refused(tmp_path):
    with pytest.raises(ValidationError, match="LW_TOPIC_MIN_INSYNC_REPLICAS=3 is more than the LW_TOPIC_REPLICATION=2"):
        StackSettings(topic_replication=2, topic_min_insync_replicas=3)
    with pytest.raises(ValidationError, match="would share ports"):
        StackSettings(stack_brokers=3, kafka_port=9092, kafka_controller_port=9094)


def test_the_bootstrap_names_every_broker_and_every_node_has_its_own_ports(tmp_path):
    settings = three(tmp_path)
    assert settings.bootstrap == "127.0.0.1:18092,127.0.0.1:18094,127.0.0.1:18096"
    assert LocalStack(settings).ports_to_claim([]) == {
        18092: "LW_KAFKA_PORT (the Kafka broker)", 18093: "LW_KAFKA_CONTROLLER_PORT (the Kafka controller)",
        18094: "LW_KAFKA_PORT+2 (Kafka broker 2)", 18095: "LW_KAFKA_CONTROLLER_PORT+2 (Kafka controller 2)",
        18096: "LW_KAFKA_PORT+4 (Kafka broker 3)", 18097: "LW_KAFKA_CONTROLLER_PORT+4 (Kafka controller 3)",
    }


def test_each_node_is_a_voter_with_its_own_directory_and_kafkas_own_topics_are_replicated(tmp_path):
    cluster = KafkaCluster(three(tmp_path))
    cluster.write_config()
    configs = [properties(node) for node in cluster.nodes]
    assert {c["controller.quorum.voters"] for c in configs} == {"1@127.0.0.1:18093,2@127.0.0.1:18095,3@127.0.0.1:18097"}
    assert [c["node.id"] for c in configs] == ["1", "2", "3"]
    assert [c["log.dirs"] for c in configs] == [str(tmp_path.resolve() / d / "data") for d in ("kafka", "kafka-2", "kafka-3")]
    assert configs[1]["listeners"] == "PLAINTEXT://127.0.0.1:18094,CONTROLLER://127.0.0.1:18095"
    for c in configs:
        assert c["offsets.topic.replication.factor"] == c["transaction.state.log.replication.factor"] == c["default.replication.factor"] == "3"
        assert c["min.insync.replicas"] == c["transaction.state.log.min.isr"] == "2"


def fake_format(argv, **kwargs):
    """kafka-storage format, as far as the stack can see it: meta.properties with the cluster id, in log.dirs."""
    config = Path(next(a for a in argv if a.startswith("--config=")).split("=", 1)[1])
    cluster_id = next(a for a in argv if a.startswith("--cluster-id=")).split("=", 1)[1]
    data = Path(dict(line.split("=", 1) for line in config.read_text().splitlines())["log.dirs"])
    data.mkdir(parents=True)
    (data / "meta.properties").write_text(f"version=1\ncluster.id={cluster_id}\n")
    return subprocess.CompletedProcess(argv, 0, "", "")


def test_every_node_is_formatted_once_with_one_cluster_id(tmp_path, monkeypatch):
    monkeypatch.setattr(kafka_broker.subprocess, "run", fake_format)
    cluster = KafkaCluster(three(tmp_path))
    cluster.write_config()
    assert cluster.format_storage() is True
    ids = {node.cluster_id() for node in cluster.nodes}
    assert len(ids) == 1 and not next(iter(ids)).startswith("-")
    assert cluster.format_storage() is False


def test_a_state_directory_formatted_for_another_number_of_nodes_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(kafka_broker.subprocess, "run", fake_format)
    one = KafkaCluster(StackSettings(state_dir=tmp_path, cache_dir=tmp_path / "cache"))
    one.write_config()
    one.format_storage()
    with pytest.raises(BrokerError, match=r"1 formatted node\(s\).*stack up --brokers 1"):
        KafkaCluster(three(tmp_path)).format_storage()


def test_down_and_status_see_every_node_on_disk_whatever_the_settings_say_now(tmp_path, monkeypatch):
    monkeypatch.setattr(kafka_broker.subprocess, "run", fake_format)
    made = KafkaCluster(three(tmp_path))
    made.write_config()
    made.format_storage()
    now = KafkaCluster(StackSettings(state_dir=tmp_path, kafka_port=18092, kafka_controller_port=18093))
    assert [n.name for n in now.nodes_on_disk()] == ["kafka", "kafka-2", "kafka-3"]
    assert [c.name for c in LocalStack(now.settings).components()][:3] == ["kafka", "kafka-2", "kafka-3"]
    with pytest.raises(BrokerError, match=r"3 formatted node\(s\).*stack up --brokers 3"):
        now.formatted_cluster_id()


def test_a_node_of_another_stack_is_named_by_its_state_directory(tmp_path):
    cmdline = f"java -cp x/* kafka.Kafka {tmp_path}/other/kafka-3/server.properties"
    assert _lightwire_state_dir(1, cmdline) == f"{tmp_path}/other"


def test_services_the_stack_starts_know_every_broker_and_replicate_as_the_stack_does(tmp_path, monkeypatch):
    monkeypatch.delenv("LW_KAFKA_BOOTSTRAP", raising=False)
    env = LocalStack(three(tmp_path)).service_env()
    assert env["LW_KAFKA_BOOTSTRAP"] == "127.0.0.1:18092,127.0.0.1:18094,127.0.0.1:18096"
    assert (env["LW_TOPIC_REPLICATION"], env["LW_TOPIC_MIN_INSYNC_REPLICAS"]) == ("3", "2")


def test_topics_carry_their_replication():
    specs = topics.topic_specs(4, topics.TopicNames("x."), topics.Replication(3, 2))
    assert {(s.replicas, s.configs["min.insync.replicas"]) for s in specs} == {(3, "2")}
    weights = next(s for s in specs if s.name == "x.weights")
    assert weights.configs["cleanup.policy"] == "compact"
    assert {s.replicas for s in topics.topic_specs()} == {1}
    with pytest.raises(ValueError, match="min.insync.replicas"):
        topics.Replication(1, 2)


def test_the_collectors_own_topics_are_replicated_as_the_settings_say():
    from lightwire.services.collector.faust_app import build_app
    from lightwire.services.collector.settings import CollectorSettings

    app = build_app(CollectorSettings(topic_replication=3, kafka_bootstrap="a:1,b:2,c:3"), "x-collector", 4)
    assert app.conf.topic_replication_factor == 3
    assert [str(b) for b in app.conf.broker] == ["kafka://a:1", "kafka://b:2", "kafka://c:3"]
