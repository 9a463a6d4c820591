from lightwire_client._gen import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AcquireTaskRequest(_message.Message):
    __slots__ = ("worker_id", "task_types", "wait_ms")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPES_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    task_types: _containers.RepeatedScalarFieldContainer[str]
    wait_ms: int
    def __init__(self, worker_id: _Optional[str] = ..., task_types: _Optional[_Iterable[str]] = ..., wait_ms: _Optional[int] = ...) -> None: ...

class AcquireTaskResponse(_message.Message):
    __slots__ = ("task", "rollout_id", "base_url", "heartbeat_interval_ms")
    TASK_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    task: _events_pb2.Task
    rollout_id: str
    base_url: str
    heartbeat_interval_ms: int
    def __init__(self, task: _Optional[_Union[_events_pb2.Task, _Mapping]] = ..., rollout_id: _Optional[str] = ..., base_url: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ...) -> None: ...

class StartRolloutRequest(_message.Message):
    __slots__ = ("rollout_id", "worker_id", "task")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    worker_id: str
    task: _events_pb2.Task
    def __init__(self, rollout_id: _Optional[str] = ..., worker_id: _Optional[str] = ..., task: _Optional[_Union[_events_pb2.Task, _Mapping]] = ...) -> None: ...

class StartRolloutResponse(_message.Message):
    __slots__ = ("rollout_id", "base_url", "model_version")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    base_url: str
    model_version: int
    def __init__(self, rollout_id: _Optional[str] = ..., base_url: _Optional[str] = ..., model_version: _Optional[int] = ...) -> None: ...

class EmitRewardRequest(_message.Message):
    __slots__ = ("reward",)
    REWARD_FIELD_NUMBER: _ClassVar[int]
    reward: _events_pb2.RolloutReward
    def __init__(self, reward: _Optional[_Union[_events_pb2.RolloutReward, _Mapping]] = ...) -> None: ...

class EmitSpanRequest(_message.Message):
    __slots__ = ("span",)
    SPAN_FIELD_NUMBER: _ClassVar[int]
    span: _events_pb2.AgentSpan
    def __init__(self, span: _Optional[_Union[_events_pb2.AgentSpan, _Mapping]] = ...) -> None: ...

class FinishRolloutRequest(_message.Message):
    __slots__ = ("rollout_id", "status", "num_calls", "error")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NUM_CALLS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    status: _events_pb2.RolloutStatus
    num_calls: int
    error: _events_pb2.ErrorInfo
    def __init__(self, rollout_id: _Optional[str] = ..., status: _Optional[_Union[_events_pb2.RolloutStatus, str]] = ..., num_calls: _Optional[int] = ..., error: _Optional[_Union[_events_pb2.ErrorInfo, _Mapping]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("worker_id", "rollout_ids")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_IDS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    rollout_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, worker_id: _Optional[str] = ..., rollout_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("unknown_rollout_ids",)
    UNKNOWN_ROLLOUT_IDS_FIELD_NUMBER: _ClassVar[int]
    unknown_rollout_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, unknown_rollout_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("event_id",)
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    def __init__(self, event_id: _Optional[str] = ...) -> None: ...
