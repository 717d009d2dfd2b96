"""Marketplace pages: the catalogue releases (定期面向全区发布), their downloads and Atom feed, and the
bureau's button that publishes one."""
from __future__ import annotations

import io

from feedgen.feed import FeedGenerator
from flask import Response, current_app, flash, redirect, render_template, send_file, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core.auth import AccessRule, current_actor, current_principal, public, requires
from core.db import end_reads, unit_of_work, utcnow
from core.errors import Conflict, RuleBroken
from core.extensions import current_language, db
from core.models import Role
from core.templating import NavItem
from marketplace.blueprints import bp
from marketplace.catalogue import releases
from marketplace.catalogue.models import ReleaseChange

NAV: list[NavItem] = [NavItem("marketplace.releases_page", _l("Catalogue releases"), AccessRule(None))]

NUMBER = "<int(min=1, max=2147483647):number>"
SHOWN_PER_TABLE = 200  # a page lists this many of each kind of change; the downloads hold them all


@bp.app_template_filter("release_label")
def release_label(release) -> str:
    return releases.release_label(release)


@bp.route("/catalogue/releases")
@public
def releases_page():
    user = current_principal()
    return render_template("marketplace/releases.html", releases=releases.list_releases(db.session),
                           may_publish=user is not None and user.has_role(Role.BUREAU_ADMIN),
                           unchanged_count=releases.unchanged_count)


@bp.route(f"/catalogue/releases/{NUMBER}")
@public
def release(number: int):
    release = releases.get_release(db.session, number)
    tables = []
    for change, count in ((ReleaseChange.ADDED, release.added_count), (ReleaseChange.CHANGED, release.changed_count),
                          (ReleaseChange.WITHDRAWN, release.withdrawn_count)):
        items = releases.release_items(db.session, release, changes=[change], limit=SHOWN_PER_TABLE) if count else []
        tables.append((change, count, items))
    return render_template("marketplace/release.html", release=release, tables=tables,
                           unchanged=releases.unchanged_count(release), language=current_language(),
                           CHANGE_LABELS=releases.CHANGE_LABELS, field_labels=releases.changed_field_labels,
                           formats=releases.DOWNLOAD_FORMATS)


@bp.route(f"/catalogue/releases/{NUMBER}.xlsx", defaults={"fmt": "xlsx"})
@bp.route(f"/catalogue/releases/{NUMBER}.csv", defaults={"fmt": "csv"})
@bp.route(f"/catalogue/releases/{NUMBER}.json", defaults={"fmt": "json"})
@public
def release_download(number: int, fmt: str) -> ResponseReturnValue:
    release = releases.get_release(db.session, number)
    items = releases.release_items(db.session, release)
    end_reads(release)  # the file is made with no transaction open
    body, mimetype, name = releases.release_download(release, items, fmt)
    return send_file(io.BytesIO(body), mimetype=mimetype, as_attachment=True, download_name=name)


@bp.route("/catalogue/releases.atom")
@public
def releases_feed() -> ResponseReturnValue:
    feed = FeedGenerator()
    feed.id(url_for(".releases_page", _external=True))
    feed.title(_("Catalogue releases of the district's research instruments"))
    feed.link(href=url_for(".releases_page", _external=True), rel="alternate")
    feed.link(href=url_for(".releases_feed", _external=True), rel="self")
    feed.language("zh-CN" if current_language() == "zh_CN" else "en")
    listed = releases.list_releases(db.session)
    feed.updated(listed[0].published_at if listed else utcnow())
    for release in listed:  # newest first, as the feed lists them
        link = url_for(".release", number=release.number, _external=True)
        entry = feed.add_entry(order="append")
        entry.id(link)
        entry.title(releases.release_label(release))
        entry.link(href=link, rel="alternate")
        entry.published(release.published_at)
        entry.updated(release.published_at)
        entry.summary(_("%(instruments)d instruments: %(added)d added, %(changed)d changed, %(withdrawn)d withdrawn.",
                        instruments=release.instrument_count, added=release.added_count,
                        changed=release.changed_count, withdrawn=release.withdrawn_count))
    return Response(feed.atom_str(pretty=True), mimetype="application/atom+xml")


@bp.route("/catalogue/releases/publish", methods=["POST"])
@requires(Role.BUREAU_ADMIN)
def publish_release():
    try:
        with unit_of_work() as session:
            made = releases.publish_release(session, actor=current_actor(), user=current_principal(), now=utcnow(),
                                            large_line_fen=current_app.config["LARGE_INSTRUMENT_LINE_FEN"])
            number, label = made.number, releases.release_label(made)
    except (RuleBroken, Conflict) as error:
        flash(error.message, "danger")
        return redirect(url_for(".releases_page"))
    flash(_("%(label)s is published.", label=label), "success")
    return redirect(url_for(".release", number=number))
