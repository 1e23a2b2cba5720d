"""`leadmagnet magnets` and `leadmagnet content`: the lead magnets, their versions, and their
content as folders of files (export, import, diff, publish and roll back)."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from .core.extensions import db
from .core.models import EmailStatus, Magnet, Purpose, ScheduledEmail
from .sending.context import Context, for_app


def _context() -> Context:
    return for_app(current_app)


def _magnet(slug: str) -> Magnet:
    from .content.magnets import by_slug

    _context()  # the default magnet is loaded on first use of an empty database
    magnet = by_slug(slug)
    if magnet is None:
        raise click.ClickException(f"no magnet {slug!r}: `leadmagnet magnets list` shows them")
    return magnet


def _in_sequence() -> dict[int | None, int]:
    """Subscribers with an email of each magnet's sequence not yet sent."""
    rows = db.session.execute(
        select(ScheduledEmail.magnet_id, func.count(func.distinct(ScheduledEmail.subscriber_id)))
        .where(
            ScheduledEmail.purpose == Purpose.DRIP,
            ScheduledEmail.status.in_(EmailStatus.OPEN),
        )
        .group_by(ScheduledEmail.magnet_id)
    )
    return {magnet_id: count for magnet_id, count in rows}


def _number(magnet: Magnet) -> str:
    from .content.versions import published_version

    version = published_version(magnet)
    return f"v{version.number}" if version else "unpublished"


@click.group("magnets")
def magnets_group() -> None:
    """The lead magnets: list them, show one."""


@magnets_group.command("list")
@with_appcontext
def magnets_list() -> None:
    """One magnet a line: slug, title, published version, subscribers in its sequence."""
    from .content.magnets import active

    _context()  # the default magnet is loaded on first use of an empty database
    counts = _in_sequence()
    for magnet in active():
        default = " (default)" if magnet.is_default else ""
        click.echo(
            f"{magnet.slug}\t{magnet.title}{default}\t{_number(magnet)}\t"
            f"{counts.get(magnet.id, 0)} in sequence"
        )


@magnets_group.command("show")
@click.argument("slug")
@with_appcontext
def magnets_show(slug: str) -> None:
    """A magnet's details and its versions, with when and by whom each was published."""
    _context()
    magnet = _magnet(slug)
    click.echo(f"slug: {magnet.slug}")
    click.echo(f"title: {magnet.title}")
    click.echo(f"default: {'yes' if magnet.is_default else 'no'}")
    if magnet.managed_by_file:
        click.echo(f"managed by the file: {magnet.managed_by_file}")
    click.echo(
        f"guide: {magnet.guide_key or 'the default guide (GUIDE_FILE, GUIDE_URL or sample)'}"
    )
    if magnet.archived_at:
        click.echo(f"archived: {magnet.archived_at:%Y-%m-%d %H:%M} UTC")
    click.echo(f"published: {_number(magnet)}")
    click.echo(f"in sequence: {_in_sequence().get(magnet.id, 0)}")
    click.echo("versions:")
    _versions(magnet)


def _versions(magnet: Magnet) -> None:
    from .content.versions import history

    for version, publications in history(magnet):
        mark = " (in force)" if version.id == magnet.published_version_id else ""
        note = f" - {version.note}" if version.note else ""
        click.echo(
            f"  v{version.number}{mark}: made {version.created_at:%Y-%m-%d %H:%M} UTC "
            f"by {version.created_by}{note}"
        )
        for p in publications:
            click.echo(f"    published {p.published_at:%Y-%m-%d %H:%M} UTC by {p.published_by}")


@click.group("content")
def content_group() -> None:
    """Magnets' content as folders: export, import, versions, diff, publish."""


@content_group.command("export")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def content_export(folder: Path) -> None:
    """Write every magnet as a folder named by its slug (sequence.toml, templates, guide.pdf)."""
    from .sending.content_import import ContentFolderError, export_all

    try:
        written = export_all(_context(), folder)
    except ContentFolderError as exc:
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(str(path))


@content_group.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Apply the changes (without it, only show them).")
@click.option("--by", default="cli", show_default=True, help="Who the versions are made by.")
@with_appcontext
def content_import(folder: Path, yes: bool, by: str) -> None:
    """Create or update magnets from a magnet folder, or a folder of them; shows the impact
    first and changes nothing without --yes."""
    from .sending.content_import import ContentFolderError, apply_import, plan_import

    ctx = _context()
    try:
        planned = plan_import(ctx, folder)
    except ContentFolderError as exc:
        raise click.ClickException(str(exc)) from None
    for item in planned:
        for line in item.lines():
            click.echo(line)
    if all(item.unchanged for item in planned):
        click.echo("nothing to import: every magnet is as the folders have it")
        return
    if not yes:
        click.echo("nothing changed: run again with --yes to apply this")
        return
    changed = apply_import(ctx, planned, by)
    click.echo(f"imported: {changed} magnet{'' if changed == 1 else 's'} changed")


@content_group.command("versions")
@click.argument("slug")
@with_appcontext
def content_versions(slug: str) -> None:
    """A magnet's versions, with when and by whom each was published."""
    _context()
    _versions(_magnet(slug))


@content_group.command("diff")
@click.argument("slug")
@click.argument("old", type=int)
@click.argument("new", type=int)
@with_appcontext
def content_diff(slug: str, old: int, new: int) -> None:
    """What changed from version OLD to version NEW (a unified diff of the files)."""
    from .content.versions import by_number, diff, files_of

    magnet = _magnet(slug)
    versions = [by_number(magnet, n) for n in (old, new)]
    for number, version in zip((old, new), versions, strict=True):
        if version is None:
            raise click.ClickException(f"magnet {slug!r} has no version {number}")
    a, b = (files_of(v) for v in versions if v is not None)
    click.echo(diff(a, b) or f"v{old} and v{new} have the same files", nl=False)


@content_group.command("publish")
@click.argument("slug")
@click.argument("number", metavar="VERSION", type=int)
@click.option("--yes", is_flag=True, help="Publish (without it, only show the impact).")
@click.option("--by", default="cli", show_default=True, help="Who publishes.")
@with_appcontext
def content_publish(slug: str, number: int, yes: bool, by: str) -> None:
    """Put a version in force (an older one: a rollback); shows the impact first and changes
    nothing without --yes."""
    from .content.versions import by_number
    from .sending.publish import ANY, impact, publish

    ctx = _context()
    magnet = _magnet(slug)
    version = by_number(magnet, number)
    if version is None:
        raise click.ClickException(f"magnet {slug!r} has no version {number}")
    if magnet.managed_by_file:
        raise click.ClickException(
            f"magnet {slug!r} is managed by the file {magnet.managed_by_file}: edit that file"
        )
    if magnet.published_version_id == version.id:
        click.echo(f"{slug}: v{number} is in force already; nothing changed")
        return
    for line in impact(ctx, magnet, version).as_lines():
        click.echo(line)
    if not yes:
        click.echo("nothing changed: run again with --yes to publish")
        return
    # Over whatever is in force now: said, in case another publish landed since the impact.
    replaced = publish(ctx, magnet, version, by, over=ANY).replaced
    click.echo(f"{slug}: v{number} published" + (f" (it replaced v{replaced})" if replaced else ""))
