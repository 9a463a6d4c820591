"""Token ids to the text a person reads, with the served model's own tokenizer when it is on this machine.

The analytics keep token ids, never text per token. The tokenizer is looked up by the call's model name in the
model cache (or as a directory), loaded once (`tokenizers`, no torch), and never downloaded: without it the
dashboard shows ids alone.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from lightwire.model_cache import models_dir

log = logging.getLogger(__name__)


class TokenTexts:
    def __init__(self, cache_dir: Path):
        self.cache_dir = cache_dir

    def texts(self, model: str, ids: list[int]) -> list[str] | None:
        tokenizer = self._tokenizer(model)
        if tokenizer is None:
            return None
        # One id at a time: the text of each token, as the model produced it (a partial UTF-8 sequence shows as �).
        return tokenizer.decode_batch([[i] for i in ids], skip_special_tokens=False)

    @lru_cache(maxsize=8)
    def _tokenizer(self, model: str):
        for directory in (models_dir(self.cache_dir) / model, Path(model).expanduser()):
            file = directory / "tokenizer.json"
            if model and file.is_file():
                try:
                    from tokenizers import Tokenizer

                    return Tokenizer.from_file(str(file))
                except Exception as exc:  # a broken file costs the texts, not the page
                    log.warning("tokenizer could not be loaded", extra={"path": str(file), "error": repr(exc)})
                    return None
        return None
