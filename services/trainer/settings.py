"""Trainer settings (env prefix LW_, e.g. LW_TRAINER_LR)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from lightwire.services.trainer.staleness import StalePolicy
from lightwire.settings import ServiceSettings


class TrainerSettings(ServiceSettings):
    trainer_model: str = Field("tiny-llama", description="Model name (tiny-llama, smollm2-135m-instruct) or a model directory.")
    trainer_backend: Literal["torch", "verl"] = Field(
        "torch", description="torch (transformers + AdamW, torchrun data parallel; CPU or GPU) or verl (verl's FSDP engine; "
        "CUDA and the gpu extra).")
    trainer_device: str = Field("auto", description="auto (CUDA when present), cpu or cuda.")
    trainer_lr: float = Field(1e-5, description="AdamW learning rate.")
    trainer_weight_decay: float = Field(0.0, description="AdamW weight decay.")
    trainer_max_grad_norm: float = Field(1.0, description="Gradient clipping norm.")
    trainer_lora: bool = Field(False, description="Train a LoRA adapter (peft) instead of every weight.")
    trainer_lora_rank: int = Field(16, description="LoRA rank.")
    # The loss settings are checked where the loss is configured (grpo.LossConfig), once for every caller.
    trainer_clip_low: float = Field(0.2, description="Lower clip of the importance ratio (1 - clip_low), in [0, 1).")
    trainer_clip_high: float = Field(0.28, description="Upper clip of the importance ratio (1 + clip_high).")
    trainer_kl_coef: float = Field(0.0, description="Weight of the k3 KL penalty to the base model; 0 turns it off.")
    trainer_scale_by_std: bool = Field(True, description="Divide group-centred rewards by the group's std.")
    trainer_temperature: float = Field(1.0, description="Sampling temperature the behaviour logprobs were taken at.")
    trainer_max_staleness: int = Field(4, description="Largest (current - batch) version gap trained at full weight.")
    trainer_stale_policy: StalePolicy = Field("drop", description="What happens to staler batches.")
    trainer_micro_batch: int = Field(8, description="Sequences per forward/backward pass (gradients accumulate).")
    trainer_gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass instead of keeping them: on SmolLM2-135M with "
        "4 rows of about 700 tokens per pass, one update's peak memory went 8.6 -> 4.3 GB and its time 46 -> 57 s (torch backend).")
    trainer_publish_every: int = Field(1, description="Write a checkpoint and announce it every N updates.")
    trainer_checkpoint_dir: Path = Field(Path(""), description="Where checkpoints go; default <state_dir>/checkpoints.")
    trainer_keep_checkpoints: int = Field(3, description="Checkpoints kept on disk (inference may still be loading one).")
    trainer_host: str = Field("127.0.0.1", description="Address of /healthz and /metrics.")
    trainer_ops_port: int = Field(8104, description="Port of /healthz and /metrics.")
    trainer_seed: int = Field(0, description="Seed of torch's generators.")
    trainer_threads: int = Field(
        0, description="Torch CPU threads for the update; 0 keeps torch's default (OMP_NUM_THREADS, else every core). "
        "The demo gives the trainer every core while the other services give theirs one each: the update runs while "
        "inference waits for the next rollouts.")

    @model_validator(mode="after")
    def _check(self) -> "TrainerSettings":
        if self.trainer_micro_batch < 1 or self.trainer_publish_every < 1:
            raise ValueError("LW_TRAINER_MICRO_BATCH and LW_TRAINER_PUBLISH_EVERY must be at least 1")
        return self

    def checkpoint_dir(self) -> Path:
        return self.trainer_checkpoint_dir if str(self.trainer_checkpoint_dir) not in ("", ".") else self.state_dir / "checkpoints"

    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.trainer_ops_port}/healthz"

    def listen_ports(self) -> set[int]:
        return {self.trainer_ops_port}


Settings = TrainerSettings
