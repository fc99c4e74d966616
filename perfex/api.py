"""PerFeX from Python: load a checkpoint and predict clips in-process, build a fresh model, read clips.

Importing this module (and ``perfex``) imports neither torch nor the readers; each function imports what it needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    import pandas as pd

    from models import TraitModel

    from .core.clips import ClipSet
    from .infer.engine import Engine
    from .checkpoint.metadata import CheckpointMeta
    from .data.options import DeployConfig

PathLike = Union[str, Path]
DATAFRAME_NAME = "dataframe"  # the input name (clip ID of an extractor frame table) a DataFrame is read under


class Model:
    """A checkpoint loaded for prediction on the runtime deploy would choose (ONNX Runtime or torch)."""

    def __init__(self, config: DeployConfig, meta: CheckpointMeta, engine: Engine) -> None:
        self.config, self.meta, self.engine = config, meta, engine

    @property
    def family(self) -> str:
        return self.config.family

    def __repr__(self) -> str:
        return f"Model({self.family!r}, weights={self.config.deploy.weights!r}, runtime={self.engine.runtime!r})"

    def predict(self, data: PathLike | Sequence[PathLike] | pd.DataFrame) -> pd.DataFrame:
        """One row per input clip with the deploy CSV's columns and values (the CSV rounds floats to 6 digits).

        ``data``: a file or folder, a list of them, or a DataFrame of frames (PerFeX long format, or one OpenFace,
        py-feat or LibreFace frame table, read as the clip ``dataframe``).

        >>> import pandas as pd, perfex
        >>> from perfex.core.paths import DATA_DIR, WEIGHTS_DIR
        >>> frames = pd.read_csv(DATA_DIR / "openface_deploy" / "cyIVkcs6vIe.000.csv.gz")
        >>> perfex.load_model(WEIGHTS_DIR / "attn.safetensors").predict(frames)[["ID", "status", "n_frames"]]
                  ID status  n_frames
        0  dataframe     ok       275
        """
        import pandas as pd

        from .infer.clip_rows import clip_columns, join_rows
        from .infer.deploy import ChunkPredictor, predicted_rows, readable_chunks
        from .infer.deploy_input import input_chunks
        from .data.readers import find_inputs

        with _input_paths(data) as paths:
            config = replace(self.config, data=replace(self.config.data, data=paths))
            chunks = readable_chunks(input_chunks(config, self.meta, find_inputs(paths)))
            rows = [rows for _, rows in predicted_rows(chunks, ChunkPredictor(self.engine, config), (0, 1))]
        return pd.DataFrame(join_rows(rows), columns=clip_columns(self.engine.targets))


def load_model(weights: PathLike, **options: object) -> Model:
    """The checkpoint (``.safetensors``, its run directory or an original ``.pt`` file), ready to ``predict``;
    ``options`` are deploy's, by name (``runtime="torch"``, ``min_frames=20``, ``predict_short=True``, ...).

    >>> import perfex
    >>> from perfex.core.paths import DATA_DIR, WEIGHTS_DIR
    >>> model = perfex.load_model(WEIGHTS_DIR / "cnn.safetensors")
    >>> table = model.predict(DATA_DIR / "deploy.csv.gz")
    >>> len(table), int((table["status"] == "ok").sum()), table.columns[7]
    (40, 36, 'extroversion')
    """
    from .infer.deploy import load_engine
    from .infer.deploy_input import reading_meta
    from .checkpoint.metadata import resolve_weights
    from .data.options import DeployConfig, build_config

    path = resolve_weights(weights)
    family = _family(path)
    config = build_config(DeployConfig, family, weights=str(path), progress=False, **options)
    meta = reading_meta(path, family)
    return Model(config, meta, load_engine(config, path, meta))


def _family(weights: Path) -> str:
    """``cnn`` or ``attn``: from the JSON beside the weights, or from an original ``.pt`` file's architecture."""
    from .checkpoint.metadata import LEGACY_SUFFIXES, read_config

    if weights.suffix in LEGACY_SUFFIXES:
        from .checkpoint.io import load_checkpoint

        return load_checkpoint(weights)[1].family
    return read_config(weights).family


@contextmanager
def _input_paths(data: PathLike | Sequence[PathLike] | pd.DataFrame) -> Iterator[list[str]]:
    """The input paths; a DataFrame is written to a temporary CSV (read by the same readers as files), then removed."""
    import tempfile

    import pandas as pd

    if isinstance(data, (str, Path)):
        yield [str(data)]
    elif isinstance(data, pd.DataFrame):
        with tempfile.TemporaryDirectory(prefix="perfex-") as folder:
            path = Path(folder) / f"{DATAFRAME_NAME}.csv"
            data.to_csv(path, index=False)
            yield [str(path)]
    else:
        yield [str(p) for p in data]


def create_model(name: str, **config: object) -> TraitModel:
    """A fresh, untrained model by registry name (``cnn``, ``attn``, ``legacy_cnn``, ``legacy_attn``); ``config``
    overrides fields of its config (see docs/models.md).

    >>> import perfex
    >>> perfex.create_model("cnn", hidden_channels=32).config.hidden_channels
    32
    """
    from models import create_model as create

    return create(name, **config)


def load_clips(path: PathLike | Sequence[PathLike], **options: object) -> ClipSet:
    """Every clip of PerFeX long CSVs and/or AU extractor CSVs (files or folders) as one ClipSet; ``options`` are the
    readers' (``labels``, ``features``, ``nan_policy``, ``min_confidence``, ...).

    >>> import perfex
    >>> from perfex.core.paths import DATA_DIR
    >>> clips = perfex.load_clips(DATA_DIR / "deploy.csv.gz")
    >>> len(clips), clips.n_features
    (40, 17)
    """
    from .data.readers import load_clips as load

    return load(path, **options)
