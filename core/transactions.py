"""Slow work outside any transaction: parsing an upload, rendering a PDF or XLSX, a network call.

On SQLite every transaction takes the write lock when it begins (core.db), reads included, and a
request's transaction begins with its first query (loading the caller). A view that is about to do slow
work ends that transaction first, then does the work, then opens its unit of work, if it writes."""
from __future__ import annotations

from core.extensions import db


def end_reads(*keep: object) -> None:
    """End the request's transaction, which has only read so far. What it loaded stays in the session,
    expired: it is read again, in the next transaction, when next used. The objects in `keep` leave the
    session instead, with what was loaded: the slow work reads their columns without a query (a
    relationship not loaded by then cannot be read)."""
    for instance in keep:
        db.session.expunge(instance)
    db.session.commit()
