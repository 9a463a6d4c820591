from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RolloutStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLLOUT_STATUS_UNSPECIFIED: _ClassVar[RolloutStatus]
    ROLLOUT_STATUS_SUCCEEDED: _ClassVar[RolloutStatus]
    ROLLOUT_STATUS_FAILED: _ClassVar[RolloutStatus]
    ROLLOUT_STATUS_TIMED_OUT: _ClassVar[RolloutStatus]
    ROLLOUT_STATUS_CANCELLED: _ClassVar[RolloutStatus]
ROLLOUT_STATUS_UNSPECIFIED: RolloutStatus
ROLLOUT_STATUS_SUCCEEDED: RolloutStatus
ROLLOUT_STATUS_FAILED: RolloutStatus
ROLLOUT_STATUS_TIMED_OUT: RolloutStatus
ROLLOUT_STATUS_CANCELLED: RolloutStatus

class Event(_message.Message):
    __slots__ = ("event_id", "time_unix_ms", "source", "schema_version", "task", "llm_call", "span", "reward", "rollout_started", "rollout_finished", "feedback", "trajectory", "batch", "train_step", "weight_version", "dead_letter")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    LLM_CALL_FIELD_NUMBER: _ClassVar[int]
    SPAN_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_STARTED_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FINISHED_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    TRAJECTORY_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    TRAIN_STEP_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    time_unix_ms: int
    source: str
    schema_version: int
    task: Task
    llm_call: LlmCall
    span: AgentSpan
    reward: RolloutReward
    rollout_started: RolloutStarted
    rollout_finished: RolloutFinished
    feedback: Feedback
    trajectory: Trajectory
    batch: TrainingBatch
    train_step: TrainStep
    weight_version: WeightVersion
    dead_letter: DeadLetter
    def __init__(self, event_id: _Optional[str] = ..., time_unix_ms: _Optional[int] = ..., source: _Optional[str] = ..., schema_version: _Optional[int] = ..., task: _Optional[_Union[Task, _Mapping]] = ..., llm_call: _Optional[_Union[LlmCall, _Mapping]] = ..., span: _Optional[_Union[AgentSpan, _Mapping]] = ..., reward: _Optional[_Union[RolloutReward, _Mapping]] = ..., rollout_started: _Optional[_Union[RolloutStarted, _Mapping]] = ..., rollout_finished: _Optional[_Union[RolloutFinished, _Mapping]] = ..., feedback: _Optional[_Union[Feedback, _Mapping]] = ..., trajectory: _Optional[_Union[Trajectory, _Mapping]] = ..., batch: _Optional[_Union[TrainingBatch, _Mapping]] = ..., train_step: _Optional[_Union[TrainStep, _Mapping]] = ..., weight_version: _Optional[_Union[WeightVersion, _Mapping]] = ..., dead_letter: _Optional[_Union[DeadLetter, _Mapping]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("task_id", "group_id", "task_type", "input_json", "reference_json", "group_size", "index_in_group", "model_version", "attempt", "split", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    INPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_JSON_FIELD_NUMBER: _ClassVar[int]
    GROUP_SIZE_FIELD_NUMBER: _ClassVar[int]
    INDEX_IN_GROUP_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    group_id: str
    task_type: str
    input_json: str
    reference_json: str
    group_size: int
    index_in_group: int
    model_version: int
    attempt: int
    split: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, task_id: _Optional[str] = ..., group_id: _Optional[str] = ..., task_type: _Optional[str] = ..., input_json: _Optional[str] = ..., reference_json: _Optional[str] = ..., group_size: _Optional[int] = ..., index_in_group: _Optional[int] = ..., model_version: _Optional[int] = ..., attempt: _Optional[int] = ..., split: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Completion(_message.Message):
    __slots__ = ("index", "text", "token_ids", "logprobs", "finish_reason", "tool_calls_json", "tool_call_parse_error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_JSON_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_PARSE_ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    text: str
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    logprobs: _containers.RepeatedScalarFieldContainer[float]
    finish_reason: str
    tool_calls_json: str
    tool_call_parse_error: bool
    def __init__(self, index: _Optional[int] = ..., text: _Optional[str] = ..., token_ids: _Optional[_Iterable[int]] = ..., logprobs: _Optional[_Iterable[float]] = ..., finish_reason: _Optional[str] = ..., tool_calls_json: _Optional[str] = ..., tool_call_parse_error: _Optional[bool] = ...) -> None: ...

class LlmCall(_message.Message):
    __slots__ = ("rollout_id", "call_id", "seq", "model", "model_version", "endpoint", "prompt_token_ids", "completions", "request_json", "response_json", "latency_ms", "prompt_tokens", "completion_tokens", "http_status", "error_class", "error_message", "agent_name", "started_unix_ms", "gateway_id", "stream")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    COMPLETIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_JSON_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_JSON_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CLASS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AGENT_NAME_FIELD_NUMBER: _ClassVar[int]
    STARTED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    call_id: str
    seq: int
    model: str
    model_version: int
    endpoint: str
    prompt_token_ids: _containers.RepeatedScalarFieldContainer[int]
    completions: _containers.RepeatedCompositeFieldContainer[Completion]
    request_json: str
    response_json: str
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    http_status: int
    error_class: str
    error_message: str
    agent_name: str
    started_unix_ms: int
    gateway_id: str
    stream: bool
    def __init__(self, rollout_id: _Optional[str] = ..., call_id: _Optional[str] = ..., seq: _Optional[int] = ..., model: _Optional[str] = ..., model_version: _Optional[int] = ..., endpoint: _Optional[str] = ..., prompt_token_ids: _Optional[_Iterable[int]] = ..., completions: _Optional[_Iterable[_Union[Completion, _Mapping]]] = ..., request_json: _Optional[str] = ..., response_json: _Optional[str] = ..., latency_ms: _Optional[float] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., http_status: _Optional[int] = ..., error_class: _Optional[str] = ..., error_message: _Optional[str] = ..., agent_name: _Optional[str] = ..., started_unix_ms: _Optional[int] = ..., gateway_id: _Optional[str] = ..., stream: _Optional[bool] = ...) -> None: ...

class ErrorInfo(_message.Message):
    __slots__ = ("type", "message", "stack", "error_class")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STACK_FIELD_NUMBER: _ClassVar[int]
    ERROR_CLASS_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    stack: str
    error_class: str
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ..., stack: _Optional[str] = ..., error_class: _Optional[str] = ...) -> None: ...

class AgentSpan(_message.Message):
    __slots__ = ("rollout_id", "span_id", "parent_span_id", "name", "kind", "start_unix_ms", "end_unix_ms", "attributes", "error", "after_seq", "agent_name")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    START_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    END_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    AGENT_NAME_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    start_unix_ms: int
    end_unix_ms: int
    attributes: _containers.ScalarMap[str, str]
    error: ErrorInfo
    after_seq: int
    agent_name: str
    def __init__(self, rollout_id: _Optional[str] = ..., span_id: _Optional[str] = ..., parent_span_id: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[str] = ..., start_unix_ms: _Optional[int] = ..., end_unix_ms: _Optional[int] = ..., attributes: _Optional[_Mapping[str, str]] = ..., error: _Optional[_Union[ErrorInfo, _Mapping]] = ..., after_seq: _Optional[int] = ..., agent_name: _Optional[str] = ...) -> None: ...

class RolloutReward(_message.Message):
    __slots__ = ("rollout_id", "call_id", "name", "value", "source", "late", "comment")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    LATE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    call_id: str
    name: str
    value: float
    source: str
    late: bool
    comment: str
    def __init__(self, rollout_id: _Optional[str] = ..., call_id: _Optional[str] = ..., name: _Optional[str] = ..., value: _Optional[float] = ..., source: _Optional[str] = ..., late: _Optional[bool] = ..., comment: _Optional[str] = ...) -> None: ...

class RolloutStarted(_message.Message):
    __slots__ = ("rollout_id", "task", "worker_id", "gateway_id")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    task: Task
    worker_id: str
    gateway_id: str
    def __init__(self, rollout_id: _Optional[str] = ..., task: _Optional[_Union[Task, _Mapping]] = ..., worker_id: _Optional[str] = ..., gateway_id: _Optional[str] = ...) -> None: ...

class RolloutFinished(_message.Message):
    __slots__ = ("rollout_id", "status", "num_calls", "task_id", "group_id", "error")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NUM_CALLS_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    status: RolloutStatus
    num_calls: int
    task_id: str
    group_id: str
    error: ErrorInfo
    def __init__(self, rollout_id: _Optional[str] = ..., status: _Optional[_Union[RolloutStatus, str]] = ..., num_calls: _Optional[int] = ..., task_id: _Optional[str] = ..., group_id: _Optional[str] = ..., error: _Optional[_Union[ErrorInfo, _Mapping]] = ...) -> None: ...

class Feedback(_message.Message):
    __slots__ = ("feedback_id", "rollout_id", "call_id", "name", "value", "comment", "user_id")
    FEEDBACK_ID_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    feedback_id: str
    rollout_id: str
    call_id: str
    name: str
    value: float
    comment: str
    user_id: str
    def __init__(self, feedback_id: _Optional[str] = ..., rollout_id: _Optional[str] = ..., call_id: _Optional[str] = ..., name: _Optional[str] = ..., value: _Optional[float] = ..., comment: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class Attribution(_message.Message):
    __slots__ = ("error_class", "step", "message", "stack", "attributor")
    ERROR_CLASS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STACK_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTOR_FIELD_NUMBER: _ClassVar[int]
    error_class: str
    step: int
    message: str
    stack: str
    attributor: str
    def __init__(self, error_class: _Optional[str] = ..., step: _Optional[int] = ..., message: _Optional[str] = ..., stack: _Optional[str] = ..., attributor: _Optional[str] = ...) -> None: ...

class Transition(_message.Message):
    __slots__ = ("call_id", "seq", "prompt_token_ids", "response_token_ids", "response_mask", "response_logprobs", "reward", "model_version", "agent_name", "merged_calls")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_MASK_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    AGENT_NAME_FIELD_NUMBER: _ClassVar[int]
    MERGED_CALLS_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    seq: int
    prompt_token_ids: _containers.RepeatedScalarFieldContainer[int]
    response_token_ids: _containers.RepeatedScalarFieldContainer[int]
    response_mask: _containers.RepeatedScalarFieldContainer[int]
    response_logprobs: _containers.RepeatedScalarFieldContainer[float]
    reward: float
    model_version: int
    agent_name: str
    merged_calls: int
    def __init__(self, call_id: _Optional[str] = ..., seq: _Optional[int] = ..., prompt_token_ids: _Optional[_Iterable[int]] = ..., response_token_ids: _Optional[_Iterable[int]] = ..., response_mask: _Optional[_Iterable[int]] = ..., response_logprobs: _Optional[_Iterable[float]] = ..., reward: _Optional[float] = ..., model_version: _Optional[int] = ..., agent_name: _Optional[str] = ..., merged_calls: _Optional[int] = ...) -> None: ...

class Trajectory(_message.Message):
    __slots__ = ("rollout_id", "task_id", "group_id", "task_type", "split", "status", "transitions", "reward", "reward_components", "attributions", "min_model_version", "max_model_version", "num_calls", "merge_mismatches", "group_size")
    class RewardComponentsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    REWARD_COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    MIN_MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    NUM_CALLS_FIELD_NUMBER: _ClassVar[int]
    MERGE_MISMATCHES_FIELD_NUMBER: _ClassVar[int]
    GROUP_SIZE_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    task_id: str
    group_id: str
    task_type: str
    split: str
    status: RolloutStatus
    transitions: _containers.RepeatedCompositeFieldContainer[Transition]
    reward: float
    reward_components: _containers.ScalarMap[str, float]
    attributions: _containers.RepeatedCompositeFieldContainer[Attribution]
    min_model_version: int
    max_model_version: int
    num_calls: int
    merge_mismatches: int
    group_size: int
    def __init__(self, rollout_id: _Optional[str] = ..., task_id: _Optional[str] = ..., group_id: _Optional[str] = ..., task_type: _Optional[str] = ..., split: _Optional[str] = ..., status: _Optional[_Union[RolloutStatus, str]] = ..., transitions: _Optional[_Iterable[_Union[Transition, _Mapping]]] = ..., reward: _Optional[float] = ..., reward_components: _Optional[_Mapping[str, float]] = ..., attributions: _Optional[_Iterable[_Union[Attribution, _Mapping]]] = ..., min_model_version: _Optional[int] = ..., max_model_version: _Optional[int] = ..., num_calls: _Optional[int] = ..., merge_mismatches: _Optional[int] = ..., group_size: _Optional[int] = ...) -> None: ...

class TrajectoryGroup(_message.Message):
    __slots__ = ("group_id", "task_id", "trajectories")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TRAJECTORIES_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    task_id: str
    trajectories: _containers.RepeatedCompositeFieldContainer[Trajectory]
    def __init__(self, group_id: _Optional[str] = ..., task_id: _Optional[str] = ..., trajectories: _Optional[_Iterable[_Union[Trajectory, _Mapping]]] = ...) -> None: ...

class TrainingBatch(_message.Message):
    __slots__ = ("batch_id", "groups", "min_model_version")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    MIN_MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    groups: _containers.RepeatedCompositeFieldContainer[TrajectoryGroup]
    min_model_version: int
    def __init__(self, batch_id: _Optional[str] = ..., groups: _Optional[_Iterable[_Union[TrajectoryGroup, _Mapping]]] = ..., min_model_version: _Optional[int] = ...) -> None: ...

class TrainStep(_message.Message):
    __slots__ = ("model", "step", "version", "loss", "kl", "reward_mean", "reward_std", "clip_fraction", "tokens_per_s", "num_trajectories", "num_groups", "dropped_stale", "batch_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    KL_FIELD_NUMBER: _ClassVar[int]
    REWARD_MEAN_FIELD_NUMBER: _ClassVar[int]
    REWARD_STD_FIELD_NUMBER: _ClassVar[int]
    CLIP_FRACTION_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_S_FIELD_NUMBER: _ClassVar[int]
    NUM_TRAJECTORIES_FIELD_NUMBER: _ClassVar[int]
    NUM_GROUPS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_STALE_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    model: str
    step: int
    version: int
    loss: float
    kl: float
    reward_mean: float
    reward_std: float
    clip_fraction: float
    tokens_per_s: float
    num_trajectories: int
    num_groups: int
    dropped_stale: int
    batch_id: str
    def __init__(self, model: _Optional[str] = ..., step: _Optional[int] = ..., version: _Optional[int] = ..., loss: _Optional[float] = ..., kl: _Optional[float] = ..., reward_mean: _Optional[float] = ..., reward_std: _Optional[float] = ..., clip_fraction: _Optional[float] = ..., tokens_per_s: _Optional[float] = ..., num_trajectories: _Optional[int] = ..., num_groups: _Optional[int] = ..., dropped_stale: _Optional[int] = ..., batch_id: _Optional[str] = ...) -> None: ...

class WeightVersion(_message.Message):
    __slots__ = ("model", "version", "uri", "base_model", "step", "format")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: int
    uri: str
    base_model: str
    step: int
    format: str
    def __init__(self, model: _Optional[str] = ..., version: _Optional[int] = ..., uri: _Optional[str] = ..., base_model: _Optional[str] = ..., step: _Optional[int] = ..., format: _Optional[str] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("topic", "partition", "offset", "key", "value", "reason", "consumer")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    reason: str
    consumer: str
    def __init__(self, topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., reason: _Optional[str] = ..., consumer: _Optional[str] = ...) -> None: ...
