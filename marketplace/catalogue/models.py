"""The catalogue releases' tables."""
from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCTime, str_enum, utcnow
from core.extensions import db


class ReleaseChange(StrEnum):
    ADDED = "added"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    WITHDRAWN = "withdrawn"


class CatalogueRelease(db.Model):
    """A numbered, frozen release of the catalogue (定期面向全区发布). Append-only once written."""

    __tablename__ = "catalogue_releases"
    __table_args__ = (sa.UniqueConstraint("year", "issue"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)  # 1, 2, 3 … across years
    year: Mapped[int]
    issue: Mapped[int]  # 第 N 期 within the year
    period: Mapped[str | None] = mapped_column(sa.String(10), unique=True)  # "2026Q4" when made by the schedule
    published_at: Mapped[UTCTime] = mapped_column(default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    instrument_count: Mapped[int]
    added_count: Mapped[int]
    changed_count: Mapped[int]
    withdrawn_count: Mapped[int]


class CatalogueReleaseItem(db.Model):
    __tablename__ = "catalogue_release_items"
    __table_args__ = (sa.UniqueConstraint("release_id", "instrument_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(sa.ForeignKey("catalogue_releases.id"), index=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id"), index=True)
    change: Mapped[ReleaseChange] = mapped_column(str_enum(ReleaseChange))
    changed_fields: Mapped[list] = mapped_column(sa.JSON, default=list)
    data: Mapped[dict] = mapped_column(sa.JSON)  # the instrument's public record as released
