"""The gRPC message size both ends of the Inference contract agree on."""

# Long prompts as token ids plus per-token logprobs outgrow gRPC's 4 MiB default.
GRPC_MAX_MESSAGE_BYTES = 64 << 20
GRPC_MESSAGE_OPTIONS = [
    ("grpc.max_send_message_length", GRPC_MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE_BYTES),
]
