"""Which files an input list names: files as given, folders searched recursively with side files skipped and counted."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...core.errors import PerfexError
from .extractors import looks_like_au_table
from .formats import titles
from .messages import UnreadableFile, name_list
from .parts import InputFile
from .sniff import sniff

_TABLE_SUFFIX = re.compile(r"\.csv(\.gz)?$", re.IGNORECASE)


@dataclass
class InputScan:
    """The input files in order, and what folders held besides them (labels tables, OpenFace side files...)."""

    files: list[InputFile]
    skipped: list[str] = field(default_factory=list)

    def notice(self) -> str | None:
        """One line naming the first few skipped entries, or None when nothing was skipped."""
        if not self.skipped:
            return None
        return (f"notice: skipped {len(self.skipped)} entries in the input folder(s) that are not AU extractor outputs: "
                f"{name_list(self.skipped, 4)}")


def _table_name(path: Path) -> str | None:
    """The name without its .csv / .csv.gz suffix (any letter case), or None when it is no such file."""
    match = _TABLE_SUFFIX.search(path.name)
    return path.name[: match.start()] if match else None


def _folder_files(folder: Path, skipped: list[str]) -> list[tuple[Path, str, str]]:
    """(file, path relative to ``folder`` without and with suffix) of every CSV in it; other entries go to ``skipped``."""
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        aligned = next((p for p in relative.parents if p.name.lower().endswith("_aligned")), None)
        if aligned is not None or not path.is_file():
            if path.is_dir() and path.name.lower().endswith("_aligned"):
                skipped.append(f"{relative.as_posix()}/")
            continue
        name = _table_name(path)
        if name is None:
            skipped.append(relative.as_posix())
        else:
            found.append((path, (relative.parent / name).as_posix(), relative.as_posix()))
    return found


def _examine(path: Path, clip_name: str, aliases: tuple[str, ...], shown: str | None,
             skipped: list[str]) -> InputFile | None:
    """The file with its sniff (or read error); None when a folder's CSV is plainly no AU table."""
    try:
        sniffed = sniff(path)
    except UnreadableFile as err:
        return InputFile(path, clip_name, aliases, None, str(err))
    if shown is not None and sniffed.fmt is None and not looks_like_au_table(sniffed.header):
        skipped.append(shown)
        return None
    return InputFile(path, clip_name, aliases, sniffed)


def find_inputs(paths: Sequence[str | Path] | str | Path) -> InputScan:
    """Files as given; folders searched recursively for *.csv / *.csv.gz (any case) that hold AU tables.

    Clip names are file stems, or the path relative to the folder (without suffix) where stems would collide.
    """
    listed: list[tuple[Path, str | None, str | None]] = []
    skipped: list[str] = []
    for given in [paths] if isinstance(paths, (str, Path)) else paths:
        path = Path(given)
        if path.is_dir():
            files = _folder_files(path, skipped)
            if not files:
                raise PerfexError(f"{path} holds no .csv or .csv.gz file; point --data at CSV files or folders of them")
            listed.extend(files)
        elif path.is_file():
            listed.append((path, None, None))
        else:
            raise PerfexError(f"{path} does not exist; check the path given to --data")
    if not listed:
        raise PerfexError("no input files given; pass --data with CSV files or folders")
    stems = Counter((relative or _table_name(path) or path.stem).rsplit("/", 1)[-1] for path, relative, _ in listed)
    found = []
    for path, relative, shown in listed:
        stem = (relative or _table_name(path) or path.stem).rsplit("/", 1)[-1]
        unique = stems[stem] == 1 or relative is None
        aliases = (relative, stem) if relative and unique and relative != stem else (relative or stem,)
        entry = _examine(path, stem if unique else relative, aliases, shown, skipped)
        if entry is not None:
            found.append(entry)
    if not found:
        raise PerfexError(f"no AU extractor output or PerFeX CSV among the inputs (skipped {name_list(skipped, 4)}); "
                          f"point --data at {titles()} files")
    return InputScan(found, skipped)


def expand_inputs(paths: Sequence[str | Path] | str | Path) -> list[Path]:
    """The input files' paths, in reading order (see ``find_inputs``)."""
    return [entry.path for entry in find_inputs(paths).files]
