"""Which data column feeds each column of the profile.

Features are found by name. The prediction, label and score columns are found by their
``source``, the data column they were profiled from (the profile names them
``prediction``, ``label``, ``score`` or by class). A batch that names them differently
says so with ``--prediction``, ``--label``, ``--score`` or ``--scores``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from modelmon.profile import ColumnProfile, Profile
from modelmon.profiling.readers import Chunk, DataError

Key = tuple[str, str]  # (role, profile column name)


@dataclass(frozen=True)
class RoleColumns:
    """The ``--prediction``, ``--label``, ``--score`` and ``--scores`` options.

    ``scores`` items are ``COL`` (class name = the column less the columns' common
    prefix, as ``modelmon profile`` names them) or ``CLASS=COL``.
    """

    prediction: str | None = None
    label: str | None = None
    score: str | None = None
    scores: tuple[str, ...] = ()


def score_classes(items: Sequence[str]) -> dict[str, str]:
    """Class name -> data column of ``--scores`` items.

    >>> score_classes(["proba_cat", "proba_dog"])
    {'cat': 'proba_cat', 'dog': 'proba_dog'}
    >>> score_classes(["cat=p1", "dog=p2"])
    {'cat': 'p1', 'dog': 'p2'}
    """
    explicit = {}
    bare = []
    for item in items:
        name, sep, column = item.partition("=")
        if sep:
            explicit[name] = column
        else:
            bare.append(item)
    prefix = os.path.commonprefix(bare) if len(bare) > 1 else ""  # noqa: RUF071 - a textual prefix is meant
    names = [c[len(prefix) :] for c in bare]
    if any(not n for n in names) or len(set(names)) != len(names):
        names = list(bare)
    return {**dict(zip(names, bare, strict=True)), **explicit}


def _default_source(col: ColumnProfile) -> str:
    if col.role == "feature":
        return col.name
    return col.source or col.name


class ColumnMap:
    """Profile column -> data column, with the options that changed the defaults."""

    def __init__(self, profile: Profile, roles: RoleColumns) -> None:
        self.profile = profile
        self.sources: dict[Key, str] = {
            (c.role, c.name): _default_source(c) for c in profile.columns
        }
        self.options: dict[Key, str] = {}  # key -> option that named its column
        self._override("prediction", "prediction", roles.prediction, "--prediction")
        self._override("label", "label", roles.label, "--label")
        self._override("score", "score", roles.score, "--score")
        self._scores(roles.scores)

    def _override(self, role: str, name: str, column: str | None, option: str) -> None:
        if column is None:
            return
        key = (role, name)
        if key not in self.sources:
            what = "a binary score" if role == "score" else f"a {role}"
            raise ValueError(f"{option} {column}: the profile has no {what} column")
        self.sources[key] = column
        self.options[key] = option

    def _scores(self, items: Sequence[str]) -> None:
        if not items:
            return
        wanted = {c.name for c in self.profile.role_columns("score") if c.name != "score"}
        if not wanted:
            raise ValueError("--scores: the profile has no multiclass score columns")
        for name, column in score_classes(items).items():
            if name not in wanted:
                raise ValueError(
                    f"--scores: {name!r} is not a score class of the profile; "
                    f"expected CLASS=COL or columns named by class, classes: "
                    f"{', '.join(sorted(wanted))}"
                )
            self.sources[("score", name)] = column
            self.options[("score", name)] = "--scores"

    def source(self, column: ColumnProfile) -> str:
        return self.sources[(column.role, column.name)]

    def check(self, chunk: Chunk) -> None:
        """Every column named by an option must be in the file (checked per file)."""
        for key, option in self.options.items():
            name = self.sources[key]
            if name not in chunk.columns:
                have = ", ".join(list(chunk.columns)[:30])
                raise DataError(
                    f"{chunk.path}: line 1: column {name!r} (from {option}) not found; "
                    f"columns: {have}"
                )

    def unknown(self, names: Iterable[str]) -> list[str]:
        """Data columns that feed no profile column (the profile's id column aside)."""
        used = set(self.sources.values())
        if self.profile.id_column:
            used.add(self.profile.id_column)
        return [n for n in names if n not in used]
