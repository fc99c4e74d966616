"""Cache of parsed input files: one uncompressed .npz per (file content hash, reader options)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..core.clips import ClipSet
from ..core.errors import PerfexError

CACHE_FORMAT = 1
_ARRAY_FIELDS = ("ids", "files", "offsets", "features", "times", "scores", "source_ids", "augmentation", "dropped_frames")


def file_digest(path: Path, cache_dir: Path) -> str:
    """SHA-256 of the file's bytes, remembered per (path, size, mtime, inode) so an unchanged file is hashed once."""
    stat = path.stat()
    stamp = json.dumps([str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino])
    memo = cache_dir / "digests" / f"{hashlib.sha256(stamp.encode()).hexdigest()[:32]}.txt"
    if memo.is_file():
        return memo.read_text().strip()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    _write_atomic(memo, lambda handle: handle.write(digest.hexdigest().encode()))
    return digest.hexdigest()


def cache_file(cache_dir: str | Path, path: Path, options: dict) -> Path:
    """Where the parse of ``path`` under ``options`` is (or will be) cached."""
    cache_dir = Path(cache_dir)
    key = json.dumps({"format": CACHE_FORMAT, "content": file_digest(path, cache_dir), **options}, sort_keys=True)
    return cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.npz"


def load_cached(entry: Path, origin: Path) -> ClipSet | None:
    """The cached ClipSet, or None when there is no usable entry (a damaged one is ignored and later replaced)."""
    if not entry.is_file():
        return None
    try:
        arrays = _read_npz(entry)
        object_fields = json.loads(str(arrays.pop("object_fields")))
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, struct.error):
        return None
    for name in object_fields:
        arrays[name] = arrays[name].astype(object)
    return ClipSet(
        **{name: arrays.get(name) for name in _ARRAY_FIELDS},
        feature_names=tuple(arrays["feature_names"].tolist()),
        origin=[str(origin)],
    )


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Members of an uncompressed .npz read straight from the file (np.load would pass every byte through a CRC)."""
    arrays = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as handle:
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f"{info.filename} is compressed")
            handle.seek(info.header_offset + 26)
            name_length, extra_length = struct.unpack("<HH", handle.read(4))
            handle.seek(info.header_offset + 30 + name_length + extra_length)
            arrays[info.filename.removesuffix(".npy")] = np.lib.format.read_array(handle, allow_pickle=False)
    return arrays


def save_cached(entry: Path, clips: ClipSet) -> None:
    """Store ``clips`` at ``entry`` (atomically; string arrays as fixed-width unicode so no pickle is needed)."""
    arrays, object_fields = {}, []
    for name in _ARRAY_FIELDS:
        value = getattr(clips, name)
        if value is None:
            continue
        if value.dtype == object:
            object_fields.append(name)
            value = value.astype(str)
        arrays[name] = value
    arrays["feature_names"] = np.array(clips.feature_names, dtype=str)
    arrays["object_fields"] = np.array(json.dumps(object_fields))
    _write_atomic(entry, lambda handle: np.savez(handle, **arrays))


def _write_atomic(path: Path, write) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as err:
        raise PerfexError(f"cannot write to the cache directory {path.parent} ({err.strerror}); "
                          "pass another --cache-dir") from None
    try:
        with open(tmp, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
