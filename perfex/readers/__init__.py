"""Input readers: one module per format (PerFeX long CSV, OpenFace 2, py-feat, LibreFace) behind one entry."""

from ..clips import Provenance
from ..schema import resolve_features
from .extractors import INTENSITY, PROBABILITY, check_compatible
from .inputs import InputScan, expand_inputs, find_inputs
from .loading import iter_clip_chunks, load_clips, read
from .messages import UnreadableFile, name_list
from .normalize import center_on_clip_median, clip_medians
from .options import NAN_POLICIES, NORMALIZATIONS, ReadOptions
from .parts import ClipChunk, InputFile, RowBlock, Unreadable
from .sniff import detect_format

__all__ = [
    "INTENSITY", "NAN_POLICIES", "NORMALIZATIONS", "PROBABILITY", "ClipChunk", "InputFile", "InputScan", "Provenance",
    "ReadOptions", "RowBlock", "Unreadable", "UnreadableFile", "center_on_clip_median", "check_compatible",
    "clip_medians", "detect_format", "expand_inputs", "find_inputs", "iter_clip_chunks", "load_clips",
    "name_list", "read", "resolve_features",
]
