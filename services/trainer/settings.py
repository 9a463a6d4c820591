"""Trainer settings (env prefix LW_, e.g. LW_TRAINER_LR)."""

from __future__ import annotations

import math
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
    trainer_algorithm: Literal["grpo", "rft", "dpo", "kto"] = Field(
        "grpo", description="The loss trained on each batch (services/trainer/algorithms.py): grpo (group-normalised "
        "advantages, clipped ratio), rft (NLL of the rollouts kept by reward), dpo (each group's best vs worst rollout) "
        "or kto (rollouts desirable or not by reward). rft, dpo and kto need the torch backend.")
    trainer_rft_mode: Literal["threshold", "best"] = Field(
        "threshold", description="rft: keep every rollout whose reward reaches LW_TRAINER_RFT_MIN_REWARD (threshold), "
        "or each group's best rollout, the first of equals, if it also reaches it (best).")
    # Checked here, so a bad value stops the start, and again by each algorithm's config (rft.RftConfig, ...) for
    # every other caller.
    trainer_rft_min_reward: float = Field(1.0, description="rft: the least reward a kept rollout has (both modes; -inf: no floor).")
    trainer_dpo_beta: float = Field(0.1, gt=0, allow_inf_nan=False, description="dpo: beta, the scale of the log-ratio margin (> 0).")
    trainer_dpo_reference: Literal["behaviour", "base"] = Field(
        "behaviour", description="dpo: the reference logprobs: the behaviour logprobs captured with the sampled tokens "
        "(no extra model), or the frozen base model (one more forward pass; a second copy of the weights without LoRA).")
    trainer_kto_beta: float = Field(0.1, gt=0, allow_inf_nan=False, description="kto: beta, the scale of the log-ratio to the reference point (> 0).")
    trainer_kto_desirable_weight: float = Field(1.0, gt=0, allow_inf_nan=False, description="kto: weight of the desirable rollouts' loss (> 0).")
    trainer_kto_undesirable_weight: float = Field(1.0, gt=0, allow_inf_nan=False, description="kto: weight of the undesirable rollouts' loss (> 0).")
    trainer_kto_threshold: float = Field(0.5, allow_inf_nan=False, description="kto: a rollout whose reward reaches this is desirable, below it undesirable.")
    trainer_kto_reference: Literal["behaviour", "base"] = Field(
        "behaviour", description="kto: the reference logprobs, as LW_TRAINER_DPO_REFERENCE.")
    trainer_scale_by_std: bool = Field(True, description="Divide group-centred rewards by the group's std.")
    trainer_temperature: float = Field(1.0, description="Sampling temperature the behaviour logprobs were taken at.")
    trainer_max_staleness: int = Field(4, description="Largest (current - batch) version gap trained at full weight.")
    trainer_stale_policy: StalePolicy = Field("drop", description="What happens to staler batches.")
    trainer_micro_batch: int = Field(8, description="Sequences per forward/backward pass (gradients accumulate).")
    trainer_gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass instead of keeping them: on SmolLM2-135M with "
        "4 rows of about 700 tokens per pass, one update's peak memory went 8.6 -> 4.3 GB and its time 46 -> 57 s (torch backend).")
    trainer_shared_prefix: bool = Field(
        True, description="Compute the leading tokens every row of a micro-batch shares (the task's prompt, a system message "
        "with examples) once instead of once per row (services/trainer/shared_prefix.py; exact to float rounding). Off "
        "with gradient checkpointing, which keeps no key/value cache.")
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
        if math.isnan(self.trainer_rft_min_reward):
            raise ValueError("LW_TRAINER_RFT_MIN_REWARD must be a number (-inf: no floor), got nan")
        if self.trainer_algorithm != "grpo":
            if self.trainer_backend != "torch":
                raise ValueError(f"LW_TRAINER_ALGORITHM={self.trainer_algorithm} needs LW_TRAINER_BACKEND=torch (verl runs grpo only)")
            if self.trainer_kl_coef > 0:
                raise ValueError(f"LW_TRAINER_KL_COEF is GRPO's penalty; LW_TRAINER_ALGORITHM={self.trainer_algorithm} takes none "
                                 "(dpo and kto: LW_TRAINER_*_REFERENCE=base anchors them to the base model)")
        return self

    def checkpoint_dir(self) -> Path:
        return self.trainer_checkpoint_dir if str(self.trainer_checkpoint_dir) not in ("", ".") else self.state_dir / "checkpoints"

    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.trainer_ops_port}/healthz"

    def listen_ports(self) -> set[int]:
        return {self.trainer_ops_port}


Settings = TrainerSettings
