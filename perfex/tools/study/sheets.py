"""Rating sheets: one CSV per rater (study_id, rater, ID, a column per trait or target), written blank and read back
validated."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np

from ...core.errors import PerfexError
from ...core.schema import BIG_FIVE, ID_COLUMN, Target, Targets
from .scale import on_scale, scale_values


def sheet_columns(targets: Targets = BIG_FIVE) -> tuple[str, ...]:
    """A sheet's header: study_id, rater, ID and a column per target."""
    return ("study_id", "rater", ID_COLUMN, *targets.names)


SHEET_COLUMNS = sheet_columns()
_RATER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def parse_raters(spec: str) -> list[str]:
    """'alice,bob' -> ['alice', 'bob']; '3' -> ['rater1', 'rater2', 'rater3']."""
    spec = spec.strip()
    if spec.isdigit():
        if int(spec) < 1:
            raise PerfexError("--raters 0: a study needs at least one rater")
        return [f"rater{i + 1}" for i in range(int(spec))]
    names = [name.strip() for name in spec.split(",") if name.strip()]
    bad = [name for name in names if not _RATER_NAME.match(name)]
    if bad or not names:
        raise PerfexError(f"--raters {spec!r}: rater names may hold only letters, digits, '.', '_' and '-' "
                          f"(bad: {', '.join(bad) or 'none given'}); or pass a number to number them")
    if len(set(names)) != len(names):
        raise PerfexError(f"--raters {spec!r} names a rater twice; every rater needs a distinct name")
    return names


def sheet_name(rater: str) -> str:
    return f"sheet_{rater}.csv"


def rater_order(clip_ids: list[str], rater_index: int, seed: int) -> list[str]:
    """The rater's own shuffled order of the clips (against order effects), reproducible from the seed."""
    rng = np.random.default_rng([seed, 7919, rater_index])
    return [clip_ids[i] for i in rng.permutation(len(clip_ids))]


def sheet_text(study_id: str, rater: str, order: list[str], answers: dict[str, dict[str, str]] | None = None,
               targets: Targets = BIG_FIVE) -> str:
    """The sheet as CSV text (the rating page writes exactly this format)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(sheet_columns(targets))
    for clip in order:
        given = (answers or {}).get(clip, {})
        writer.writerow([study_id, rater, clip, *(given.get(name, "") for name in targets.names)])
    return buffer.getvalue()


def _rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, fields) of each non-empty row; the delimiter (, ; or tab) is taken from the header."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise PerfexError(f"{path.name}: cannot be read as a UTF-8 CSV sheet ({err})") from None
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [name.strip() for name in next(reader, [])]
    rows = [(reader.line_num, row) for row in reader if any(field.strip() for field in row)]
    return header, rows


def _column_index(path: Path, header: list[str], targets: Targets) -> dict[str, int]:
    lower = [name.lower() for name in header]
    columns = sheet_columns(targets)
    index = {name: lower.index(name.lower()) for name in columns if name.lower() in lower}
    missing = [name for name in columns if name not in index and name != "rater"]
    if missing:
        raise PerfexError(f"{path.name} line 1: the header lacks {', '.join(missing)}; a sheet's header is "
                          f"{','.join(columns)} (start from the blank sheet that select wrote)")
    return index


def _normal_id(text: str) -> str:
    text = text.strip()
    return text[:-2] if text.endswith(".0") and text[:-2].isdigit() else text


def _answer(path: Path, line: int, clip: str, target: Target, text: str, scale: str, targets: Targets) -> float:
    where, trait = f"{path.name} line {line} (clip {clip})", target.name
    if not text.strip():
        every = "all five traits" if targets.is_big_five else "every target"
        raise PerfexError(f"{where}: no answer for {trait}; every clip needs {every} answered")
    try:
        value = float(text.replace(",", ".")) if text.count(",") == 1 and "." not in text else float(text)
    except ValueError:
        value = None
    if value is None or not on_scale(value, scale, target):
        allowed = ", ".join(f"{v:g}" for v in scale_values(scale, target))
        raise PerfexError(f"{where}: {trait} = {text.strip()!r} is off the {scale} scale; answers must be one of {allowed}")
    return value


def _row_answers(path: Path, line: int, row: list[str], header: list[str], column: dict[str, int], study_id: str,
                 known: set[str], scale: str, targets: Targets) -> tuple[str, list[float]]:
    """(clip ID, an answer per target) of one sheet row, checked for shifted fields, the study ID, the clip and the scale."""
    while len(row) > len(header) and not row[-1].strip():
        row = row[:-1]
    if len(row) != len(header):
        raise PerfexError(f"{path.name} line {line}: {len(row)} fields where the header has {len(header)} "
                          "(a shifted row?); keep every answer in its trait's column")
    if row[column["study_id"]].strip() != study_id:
        raise PerfexError(f"{path.name} line {line}: study_id {row[column['study_id']].strip()!r} is not this study "
                          f"({study_id}); the sheet belongs to another study")
    clip = _normal_id(row[column[ID_COLUMN]])
    if clip not in known:
        raise PerfexError(f"{path.name} line {line}: clip ID {clip!r} is not one of this study's clips (clips.csv)")
    return clip, [_answer(path, line, clip, t, row[column[t.name]], scale, targets) for t in targets]


def read_sheet(path: str | Path, study_id: str, clip_ids: list[str], scale: str,
               targets: Targets = BIG_FIVE) -> tuple[str, dict[str, list[float]]]:
    """(rater, {clip ID: an answer per target}) of a filled sheet; any problem is a one-line error naming the file and
    line."""
    path = Path(path)
    header, rows = _rows(path)
    column = _column_index(path, header, targets)
    if rows and all(not field.strip() for _, row in rows for field in row[column[targets.names[0]]:]):
        raise PerfexError(f"{path.name}: no answers yet; fill the sheet, or pass --sheets with only the filled ones")
    answers, first_line, raters = {}, {}, set()
    for line, row in rows:
        clip, given = _row_answers(path, line, row, header, column, study_id, set(clip_ids), scale, targets)
        if clip in answers:
            raise PerfexError(f"{path.name} line {line}: clip {clip} is answered twice (first on line {first_line[clip]})")
        answers[clip], first_line[clip] = given, line
        if "rater" in column and row[column["rater"]].strip():
            raters.add(row[column["rater"]].strip())
    absent = [clip for clip in clip_ids if clip not in answers]
    if absent:
        raise PerfexError(f"{path.name}: clip {absent[0]} has no row ({len(absent)} of {len(clip_ids)} clips missing); "
                          "the sheet needs one answered row per study clip")
    if len(raters) > 1:
        raise PerfexError(f"{path.name}: the rater column names {len(raters)} raters ({', '.join(sorted(raters))}); "
                          "one sheet holds one rater's answers")
    return (raters.pop() if raters else path.stem.removeprefix("sheet_")), answers
