"""One typed config per run: the CLI builds it, the model folder stores it (``config.json``), and the model
bundle rebuilds the model from it. Names are checked against the registries (models, losses, encoders)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from genrelens.encoders.pooling import WINDOW_POOLING
from genrelens.io import write_json_atomic

# paths read again after training (by a saved model, from any working folder): stored absolute
PATH_FIELDS = ("data", "posters", "split_file", "cache_dir")
OVERSAMPLING = ("none", "study", "mlros")
THRESHOLDS = ("tuned", "fixed")
TRAIN_PRECISIONS = ("auto", "fp32", "bf16")
# numeric fields: (type, low, high, low inclusive, high inclusive); None = unbounded
RANGES: dict[str, tuple[type, float | None, float | None, bool, bool]] = {
    "seed": (int, 0, None, True, True),
    "oversample_target": (float, 1.0, None, True, True),
    "max_length": (int, 8, 512, True, True),
    "hidden": (int, 1, None, True, True),
    "dropout": (float, 0.0, 1.0, True, False),
    "modality_dropout": (float, 0.0, 1.0, True, False),
    "epochs": (int, 1, None, True, True),
    "batch_size": (int, 1, None, True, True),
    "lr": (float, 0.0, None, False, True),
    "weight_decay": (float, 0.0, None, True, True),
    "warmup_ratio": (float, 0.0, 1.0, True, False),
    "patience": (int, 0, None, True, True),
    "ft_layers": (int, 1, None, True, True),
    "ft_epochs": (int, 1, None, True, True),
    "ft_batch_size": (int, 1, None, True, True),
    "ft_lr": (float, 0.0, None, False, True),
    "ft_patience": (int, 0, None, True, True),
    "probe_depth": (int, 0, None, True, True),
    "windows": (int, 1, 16, True, True),
    "window_stride": (int, 0, 256, True, True),
    "long_augment": (float, 0.0, 1.0, True, True),
    "title_dropout": (float, 0.0, 1.0, True, False),
}
# fields whose None means "the model's default" (ModelSpec.defaults), else this value
MODEL_DEFAULTS = {"windows": 1, "window_pooling": "mean", "lexical": False, "long_augment": 0.0, "title": False,
                  "ft_epochs": 4, "ft_layers": 2}


def _check_number(name: str, value, kind: type, low, high, low_in: bool, high_in: bool) -> None:
    """Raise ValueError naming ``name`` when ``value`` is not a number of ``kind`` within the range."""
    ok_type = isinstance(value, int if kind is int else int | float) and not isinstance(value, bool)
    if not ok_type:
        raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'}, not {value!r}")
    too_low = low is not None and (value < low if low_in else value <= low)
    too_high = high is not None and (value > high if high_in else value >= high)
    if too_low or too_high:
        lo = "" if low is None else f"{low}{' <=' if low_in else ' <'} "
        hi = "" if high is None else f" {'<=' if high_in else '<'} {high}"
        raise ValueError(f"{name} = {value!r} is out of range: need {lo}{name}{hi}")


def _check_labels(labels: list[str] | str) -> None:
    """``labels`` on its own: "study", "top<K>" (K >= 1), or genre names (a list or a comma-separated string)
    with none empty or repeated; whether the table has them is checked where the table is loaded."""
    from genrelens.data.labels import check_label_spec

    if isinstance(labels, str):
        spec = labels.strip()
        if spec == "study" or (spec.startswith("top") and spec[3:].isdigit() and int(spec[3:]) >= 1):
            return
        if spec.startswith("top") and spec[3:].isdigit():
            raise ValueError(f"labels = {labels!r}: top<K> needs K >= 1")
        labels = spec.split(",")
    elif not isinstance(labels, list | tuple):
        raise ValueError(f"labels = {labels!r}: give 'study', 'top<K>' or a list of genre names")
    check_label_spec(labels, "labels")


@dataclass
class RunConfig:
    """Everything that defines a training run. Saved as ``config.json`` beside the run's outputs.

    Building one only checks values (it reads no CPU, file or weights)."""

    model: str = "integrated"
    data: str | None = None  # None: the default data set
    out: str = "runs/latest"
    labels: list[str] | str = "study"  # "study" (the study's 10), "top<K>" (top-K of train) or a list
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    split_file: str | None = None  # reuse a saved split (the benchmark shares one across models)
    seed: int = 0
    oversample: str = "none"  # none | study | mlros
    oversample_target: float | None = None  # final train size / original; None: the method's default
    loss: str = "double-soft-f1"
    text_encoder: str = "minilm"
    poster_encoder: str = "effnet-lite0"
    max_length: int = 128  # tokens; dynamic padding keeps short plots cheap
    # whole-synopsis reading: up to `windows` windows of max_length tokens overlapping by window_stride,
    # pooled per plot (None: the model's default, see ModelSpec.defaults; 1 = the first max_length tokens)
    windows: int | None = None
    window_stride: int = 32
    window_pooling: str | None = None  # mean | max | first (see TextEncoder.pool_windows; None: the model's)
    long_augment: float | None = None  # share of training plots also seen with a same-genres plot appended
    lexical: bool | None = None  # late-fuse the TF-IDF + logistic regression channel (models/lexical.py)
    lexical_weight: float | None = None  # its fusion weight; None: chosen on validation
    title: bool | None = None  # text models read "<title>. <plot>" (the title alone for a movie without a plot)
    title_dropout: float = 0.0  # share of training movies with a plot read without their title
    # dense head (and training of heads over cached features)
    hidden: int = 512
    dropout: float = 0.3
    modality_dropout: float = 0.15
    epochs: int = 60
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_ratio: float = 0.05
    patience: int = 8
    # text encoder fine-tuning (text-finetuned, and stage 1 of integrated/fusion)
    # top transformer layers that train, the rest run once, frozen (see finetune.py); None: the model's default
    # (ModelSpec.defaults): 2, 1 for catalogue (as good over 3 seeds, in 60% of the time: docs/results.md)
    ft_layers: int | None = None
    # None: the model's default: 4 (2 -> 4: +0.016 weighted F1 for the study's text model), 2 for catalogue (its
    # top layer only; over 3 seeds within their spread of 3 and 4 epochs: docs/results.md, "Fine-tuning: cost
    # against quality")
    ft_epochs: int | None = None
    ft_batch_size: int = 32
    ft_lr: float = 5e-5
    ft_patience: int = 1
    # the review reasons' text probe (bundle.probe_layer) is the last frozen layer at least this many layers below
    # the top: MiniLM's layer 4 sets non-movie texts apart better than its layer 5 (docs/trust.md)
    probe_depth: int = 2
    poster_finetune: bool = False  # poster model: fine-tune the CNN's last block (eager torch, not cached)
    thresholds: str = "tuned"  # tuned (per label, on validation) | fixed (0.5, the study's)
    skip_bad: bool = False
    encoding: str = "utf-8"  # of a CSV/JSONL table
    posters: str | None = None  # folder relative poster paths are resolved against (None: the table's folder)
    sep: str | None = None  # a CSV table's separator (None: detected from its header)
    columns: dict = field(default_factory=dict)  # {field: the table's column}, e.g. {"plot": "overview"}
    cache_dir: str | None = None
    # forward passes of fine-tuning and heads under CPU bf16 autocast ("bf16") or not ("fp32"); "auto" is
    # resolved by the CPU's flags (bf16 where it has bf16 units) when training starts (train.run.resolve_precision),
    # so a saved config always says what ran
    precision: str = "auto"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        from genrelens.encoders.registry import POSTER_ENCODERS, TEXT_ENCODERS
        from genrelens.models.registry import LOSSES, MODELS

        for name in PATH_FIELDS:  # a saved model re-reads them from any folder (precision-check, serve, review)
            if getattr(self, name):
                setattr(self, name, os.path.abspath(os.path.expanduser(getattr(self, name))))

        for what, value, known in (("model", self.model, MODELS), ("loss", self.loss, LOSSES),
                                   ("oversampling", self.oversample, OVERSAMPLING),
                                   ("thresholds", self.thresholds, THRESHOLDS),
                                   ("text encoder", self.text_encoder, TEXT_ENCODERS),
                                   ("poster encoder", self.poster_encoder, POSTER_ENCODERS)):
            if value not in known:
                raise ValueError(f"unknown {what} {value!r}; choose from {', '.join(known)}")
        _check_labels(self.labels)
        if self.poster_finetune and not MODELS[self.model].poster_maps:
            raise ValueError(f"poster_finetune applies to the poster model only, not {self.model}")
        spec = MODELS[self.model]
        for name, default in MODEL_DEFAULTS.items():
            if getattr(self, name) is None:
                setattr(self, name, spec.defaults.get(name, default))
        for name in ("lexical", "title"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, not {getattr(self, name)!r}")
        if self.title and not spec.uses_text:
            raise ValueError(f"title is read as text: model {self.model} reads none")
        if self.lexical and not spec.uses_text:
            raise ValueError(f"the lexical channel reads plots: model {self.model} reads none")
        if spec.text == "lexical" and not self.lexical:
            raise ValueError(f"model {self.model} is the lexical channel: lexical cannot be false")
        if self.window_pooling not in WINDOW_POOLING:
            raise ValueError(f"unknown window pooling {self.window_pooling!r}; choose from {', '.join(WINDOW_POOLING)}")
        if self.windows > 1 and self.window_stride > self.max_length // 2:
            raise ValueError(f"window_stride = {self.window_stride} is out of range: at most max_length / 2 "
                             f"({self.max_length // 2})")
        if self.lexical_weight is not None:
            _check_number("lexical_weight", self.lexical_weight, float, 0.0, 1.0, True, True)
        if self.precision not in TRAIN_PRECISIONS:
            raise ValueError(f"training precision must be {', '.join(TRAIN_PRECISIONS)}, not {self.precision!r}")
        self.split_fractions = tuple(self.split_fractions)
        for name, (kind, low, high, low_in, high_in) in RANGES.items():
            value = getattr(self, name)
            if value is not None or name != "oversample_target":
                _check_number(name, value, kind, low, high, low_in, high_in)
        text = TEXT_ENCODERS[self.text_encoder]
        if text.layers is not None and self.ft_layers > text.layers:
            raise ValueError(f"ft_layers = {self.ft_layers} is out of range: {self.text_encoder} has {text.layers} "
                             f"transformer layers (1 <= ft_layers <= {text.layers})")
        if text.max_tokens is not None and self.max_length > text.max_tokens:
            raise ValueError(f"max_length = {self.max_length} is out of range: {self.text_encoder} reads at most "
                             f"{text.max_tokens} tokens (8 <= max_length <= {text.max_tokens})")
        fr = self.split_fractions
        if (len(fr) != 3 or any(isinstance(f, bool) or not isinstance(f, int | float) or f <= 0 for f in fr)
                or abs(sum(fr) - 1) > 1e-6):
            raise ValueError(f"split_fractions = {list(fr)}: need three positive fractions (train, validation, "
                             "test) that sum to 1")

    def table_options(self, data: str | os.PathLike | None = None) -> dict:
        """How this run read its table (encoding, posters folder, separator, column map) as ``load_table``'s
        keyword arguments, for reading it again; none for ``data`` that is another table."""
        from genrelens.data.table import resolve_data_path

        if data is not None and resolve_data_path(data).resolve() != resolve_data_path(self.data).resolve():
            return {}
        return {"encoding": self.encoding, "posters": self.posters, "sep": self.sep, "columns": self.columns or None}

    def read_table(self, data: str | os.PathLike | None = None, read: dict | None = None):
        """``(table, report)`` of ``load_table``: ``data`` (None: this run's own table, read as training read it,
        ``table_options``), bad rows skipped; ``read``: options that override (``--sep``, ``--column-map``)."""
        from genrelens.data.table import load_table

        options = {**self.table_options(data), **{k: v for k, v in (read or {}).items() if v is not None}}
        return load_table(data if data is not None else self.data, skip_bad=True, **options)

    def save(self, path: str | Path) -> None:
        write_json_atomic(path, dataclasses.asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """A saved run's config. One saved before training precision existed trained in fp32, so a missing
        ``precision`` reads fp32, not ``auto`` (which would relabel it bf16 on a CPU with bf16 units); one
        saved before ``title`` existed read no titles; one saved before ``probe_depth`` existed probed its last
        frozen layer, which the depth of its ``ft_layers`` (at most the default's) reproduces."""
        saved = read_config_file(path)
        if "probe_depth" not in saved and isinstance(saved.get("ft_layers"), int):
            saved["probe_depth"] = min(saved["ft_layers"], cls.probe_depth)
        return cls(**{"precision": "fp32", "title": False, **saved})

    def to_toml(self) -> str:
        """The config as TOML (what ``genrelens train --print-config`` shows and ``--config`` reads back);
        unset (None) values are left out, as TOML has no null."""
        import tomli_w

        def plain(v):
            if isinstance(v, tuple | list):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items() if x is not None}
            return v

        return tomli_w.dumps({k: plain(v) for k, v in dataclasses.asdict(self).items() if v is not None})


def read_config_file(path: str | Path) -> dict:
    """The fields set in a config file: TOML (``run.toml``) or JSON (a run's ``config.json``).

    Keys must be RunConfig fields (ValueError listing the known ones otherwise); values are checked when the
    RunConfig is built."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            with path.open("rb") as f:
                data = tomllib.load(f)
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ValueError(f"config file not found: {path}") from e
    except (OSError, ValueError) as e:  # tomllib.TOMLDecodeError and json.JSONDecodeError are ValueErrors
        raise ValueError(f"{path} is not a valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'} "
                         f"config: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config is a table of key = value pairs")
    known = [f.name for f in dataclasses.fields(RunConfig)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{path}: unknown config key(s) {', '.join(unknown)}; known keys: {', '.join(known)}")
    return data
