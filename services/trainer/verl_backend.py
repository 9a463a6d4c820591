"""The verl trainer backend (LW_TRAINER_BACKEND=verl; the gpu extra, verl 0.9.1): verl's own training worker runs
the update, on the model it builds and wraps in FSDP2 (sharded across the ranks under torchrun, whole on one GPU).

Everything of the update is verl's: `DataProto` and `left_right_2_no_padding` for the batch, `TrainingWorker`
(FSDP engine, AdamW, gradient clipping) and `ppo_loss` with the `vanilla` clipped policy loss for the step. Our part
is the batch layout (services/trainer/verl_batch.py) and a loss configuration equal to services/trainer/grpo.py's.

verl 0.9.1 registers its engines for CUDA and NPU only: on a machine without an accelerator its device mesh calls
torch.cuda.set_device and fails ("Found no NVIDIA driver on your system"), so this backend needs a GPU.
"""

from __future__ import annotations

import os
import socket
import time
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist
from verl import DataProto
from verl.trainer.config import CheckpointConfig
from verl.utils import tensordict_utils as tu
from verl.workers.config import ActorConfig, FSDPEngineConfig, FSDPOptimizerConfig, HFModelConfig, TrainingWorkerConfig
from verl.workers.engine_workers import TrainingWorker
from verl.workers.utils.losses import ppo_loss
from verl.workers.utils.padding import left_right_2_no_padding

from lightwire.services.trainer.backend import UpdateMetrics
from lightwire.services.trainer.collate import Sequences
from lightwire.services.trainer.grpo import MAX_LOG_RATIO, LossConfig
from lightwire.services.trainer.verl_batch import metrics_from_verl, pad_rows, to_verl_tensors


def _single_process_env() -> None:
    """verl's worker reads torchrun's variables; outside torchrun this process is rank 0 of 1."""
    if "WORLD_SIZE" in os.environ:
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))


def actor_config(loss: LossConfig, micro_batch: int) -> ActorConfig:
    """verl's actor loss set to ours: clip range [1 - clip_low, 1 + clip_high], per-sequence token means averaged
    over sequences, no entropy bonus; dual clip pushed out of reach (our loss has none: clip_ratio_c at the largest
    ratio either loss can form)."""
    if loss.kl_coef > 0:
        raise ValueError("LW_TRAINER_KL_COEF > 0 is not supported by the verl backend yet (it needs verl's reference "
                         "worker); use LW_TRAINER_BACKEND=torch or LW_TRAINER_KL_COEF=0")
    return ActorConfig(strategy="fsdp2", rollout_n=1, ppo_micro_batch_size_per_gpu=micro_batch,
                       clip_ratio_low=loss.clip_low, clip_ratio_high=loss.clip_high,
                       clip_ratio_c=float(torch.tensor(MAX_LOG_RATIO).exp()), loss_agg_mode="seq-mean-token-mean",
                       entropy_coeff=0.0, use_kl_loss=False, use_torch_compile=False)


class VerlBackend:
    def __init__(self, model_dir: Path, *, lr: float = 1e-5, weight_decay: float = 0.0, loss: LossConfig = LossConfig(),
                 temperature: float = 1.0, max_grad_norm: float = 1.0, micro_batch: int = 8, lora: bool = False, seed: int = 0):
        if lora:
            raise ValueError("LW_TRAINER_LORA is not supported by the verl backend yet; use LW_TRAINER_BACKEND=torch")
        if not torch.cuda.is_available():
            raise RuntimeError("the verl backend needs CUDA (verl 0.9.1 has no CPU engine); use LW_TRAINER_BACKEND=torch")
        from transformers import AutoTokenizer

        _single_process_env()
        self.model_dir = Path(model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.temperature = temperature
        self.micro_batch = micro_batch
        self.loss_config = actor_config(loss, micro_batch)
        self.worker = TrainingWorker(TrainingWorkerConfig(
            model_type="language_model",
            model_config=HFModelConfig(path=str(model_dir)),
            # fp32 master weights as the torch backend keeps; verl computes in bf16 under autocast.
            engine_config=FSDPEngineConfig(strategy="fsdp2", micro_batch_size_per_gpu=micro_batch, seed=seed,
                                           use_torch_compile=False, model_dtype="fp32"),
            optimizer_config=FSDPOptimizerConfig(lr=lr, weight_decay=weight_decay, clip_grad=max_grad_norm,
                                                 lr_scheduler_type="constant"),
            checkpoint_config=CheckpointConfig(),
        ))
        self.worker.reset()  # builds the model, FSDP wrapping and optimizer
        self.worker.set_loss_fn(partial(ppo_loss, self.loss_config))

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id

    def update(self, seqs: Sequences) -> UpdateMetrics:
        """One optimizer step: the whole batch is one verl mini-batch (micro-batches accumulate gradients).

        Under torchrun every rank holds the whole batch (every rank consumes it) and trains on its contiguous share,
        as verl's dispatch would hand it; verl's loss is normalised by the global batch, FSDP averages the gradients.
        """
        t0 = time.perf_counter()
        rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        padded = pad_rows(seqs, world * self.micro_batch)
        batch = DataProto.from_dict(tensors=to_verl_tensors(padded, self.pad_id), meta_info={"temperature": self.temperature})
        n = len(padded)
        share = n // world
        data = left_right_2_no_padding(batch.slice(rank * share, (rank + 1) * share).to_tensordict())
        tu.assign_non_tensor(data, calculate_entropy=False, distillation_use_topk=False, distillation_only=False,
                             global_batch_size=n, mini_batch_size=n, epochs=1, seed=0,
                             dataloader_kwargs={"shuffle": False}, compute_loss=True)
        output = self.worker.train_mini_batch(data)
        metrics = tu.get(output, "metrics") if output is not None else {}
        return metrics_from_verl(metrics, seqs.model_tokens, time.perf_counter() - t0)

    def save(self, directory: Path) -> str:
        """A transformers directory (what inference loads), gathered from the FSDP shards; written by rank 0."""
        from transformers import AutoModelForCausalLM

        params, _ = self.worker.engine.get_per_tensor_param()
        state = {name: tensor.detach().to("cpu", torch.float32) for name, tensor in params}
        if not dist.is_initialized() or dist.get_rank() == 0:
            model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32)
            missing, unexpected = model.load_state_dict(state, strict=False)
            # A tied output head is not a tensor of its own in the engine's state dict; anything else missing is a bug.
            tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
            if unexpected or set(missing) - tied:
                raise RuntimeError(f"verl's weights do not fit {self.model_dir}: missing {missing}, unexpected {unexpected}")
            model.save_pretrained(directory, safe_serialization=True)
            self.tokenizer.save_pretrained(directory)
        return "full"
