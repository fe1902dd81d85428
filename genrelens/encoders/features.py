"""Per-movie features from the frozen encoders, through the on-disk feature cache."""

from __future__ import annotations

import numpy as np

from genrelens.encoders.cache import FeatureCache
from genrelens.encoders.poster import PosterEncoder, encode_posters_cached, encode_posters_safe
from genrelens.encoders.text import TextEncoder


def text_features(encoder: TextEncoder, plots: list[str], cache: FeatureCache | None = None,
                  progress: bool = True, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(features float32 [n, dim], has_plot bool [n])``; empty plots get zero rows and False."""
    feats, mask = _text_rows(encoder, plots, cache, progress, batch_size, probe=False)
    return feats, mask


def text_features_with_probe(encoder: TextEncoder, plots: list[str], cache: FeatureCache | None = None,
                             progress: bool = True, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``text_features`` plus the encoder's probe ``[n, dim]`` (``TextEncoder.encode_with_probe``), computed in the
    same pass and cached together."""
    both, mask = _text_rows(encoder, plots, cache, progress, batch_size, probe=True)
    return both[:, : encoder.dim], mask, both[:, encoder.dim:]


def _text_rows(encoder: TextEncoder, plots: list[str], cache: FeatureCache | None, progress: bool, batch_size: int,
               probe: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``[n, dim]`` (``[n, 2 * dim]``: features then probe, with ``probe``) and the has-plot mask."""
    mask = np.array([bool(p and p.strip()) for p in plots], dtype=bool)
    dim = encoder.dim * (2 if probe else 1)
    feats = np.zeros((len(plots), dim), dtype=np.float32)
    idx = np.flatnonzero(mask)

    def compute(items: list[str]) -> np.ndarray:
        if not probe:
            return encoder.encode(items, batch_size=batch_size, progress=progress and cache is None)
        return np.hstack(encoder.encode_with_probe(items, batch_size=batch_size, progress=progress and cache is None))

    if len(idx):
        texts = [plots[i] for i in idx]
        if cache is None:
            feats[idx] = compute(texts)
        else:
            prefix = encoder.cache_key_prefix() + (f":probe={encoder.probe_layer}" if probe else "")
            feats[idx] = cache.get_or_compute(prefix, texts, texts, compute, progress=progress, dim=dim)
    return feats, mask


def poster_features(encoder: PosterEncoder, posters: list, cache: FeatureCache | None = None,
                    progress: bool = True, root=None,
                    maps: bool = False) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """``(features float32 [n, dim], ok bool [n], errors {row: message})``; None posters are just missing.

    Bad posters (unreadable, not an image, outside the data folder) count as missing and are reported.
    With ``maps``, the CNN's last-block input maps ``[n, C, h, w]`` (for fine-tuning that block; not cached).
    """
    present = [i for i, p in enumerate(posters) if p is not None and not (isinstance(p, float) and np.isnan(p))]
    feats = np.zeros((len(posters), *(encoder.maps_shape if maps else (encoder.dim,))), dtype=np.float32)
    ok = np.zeros(len(posters), dtype=bool)
    errors: dict[int, str] = {}
    if present:
        items = [posters[i] for i in present]
        use_cache = cache is not None and not maps and all(isinstance(p, str) for p in items)
        if use_cache:
            f, good, err = encode_posters_cached(encoder, items, cache, root=root, progress=progress)
        else:
            f, good, err = encode_posters_safe(encoder, items, root=root, progress=progress, maps=maps)
        feats[present] = f
        ok[present] = good
        errors = {present[j]: msg for j, msg in err.items()}
    return feats, ok, errors
