"""One GRPO update on a fixed batch of the tiny model, in one process or under torchrun (gloo); saves the weights.

    python testing/ddp_update.py OUT.pt            # one process
    torchrun --nproc-per-node 2 testing/ddp_update.py OUT.pt
"""

import os
import sys

import torch
import torch.distributed as dist

from lightwire.settings import CommonSettings
from lightwire.v1 import events_pb2 as pb
from lightwire.model_cache import ensure_model
from lightwire.services.trainer.collate import collate
from lightwire.services.trainer.torch_backend import TorchBackend


def fixed_batch() -> pb.TrainingBatch:
    g = torch.Generator().manual_seed(0)
    batch = pb.TrainingBatch(batch_id="ddp")
    for gi in range(2):
        group = batch.groups.add(group_id=f"g{gi}")
        for i in range(3):
            prompt = torch.randint(5, 2000, (6 + i,), generator=g).tolist()
            response = torch.randint(5, 2000, (4 + gi + i,), generator=g).tolist()
            t = group.trajectories.add(rollout_id=f"r{gi}{i}", reward=float(i))
            t.transitions.add(prompt_token_ids=prompt, response_token_ids=response, response_mask=[1] * len(response),
                              response_logprobs=[-7.5] * len(response), reward=float(i))
    return batch


def main(out: str) -> None:
    if "RANK" in os.environ:
        dist.init_process_group("gloo")
    torch.manual_seed(0)
    policy = TorchBackend(ensure_model("tiny-llama", CommonSettings().cache_dir), device="cpu", lr=1e-3, micro_batch=2)
    metrics = policy.update(collate(fixed_batch(), policy.pad_id))
    if not dist.is_initialized() or dist.get_rank() == 0:
        torch.save({"state": {k: v.detach().clone() for k, v in policy.model.state_dict().items()}, "loss": metrics.loss}, out)
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
