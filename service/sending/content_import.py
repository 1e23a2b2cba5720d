"""`leadmagnet content import` and `export`: magnets to and from folders of files (one a
magnet: sequence.toml, template folders, guide.pdf). An import is planned first (what each
folder would create or change, with the impact on subscribers) and applied only when asked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..content.guides import guide_pdf, store_guide
from ..content.magnet_files import SEQUENCE, fingerprint, load_files, read_folder, write_folder
from ..content.magnets import MagnetError, by_slug, check_slug, create, name_from
from ..content.published import sequence_of
from ..content.sequence import SequenceError
from ..content.storage import check_pdf, guide_key
from ..content.versions import files_of, new_version, published_version
from ..core.extensions import db
from ..core.models import Magnet
from .context import Context
from .publish import ANY, Impact, impact_of, publish

GUIDE_FILE = "guide.pdf"


class ContentFolderError(ValueError):
    """A folder cannot be imported; the message is one line naming it."""


@dataclass
class Planned:
    """What importing one folder would do."""

    folder: Path
    slug: str
    title: str
    magnet: Magnet | None  # None: a new magnet
    files: dict[str, str]
    guide: bytes | None
    content_changed: bool
    guide_changed: bool
    impact: Impact | None  # for an existing magnet whose content changes

    @property
    def unchanged(self) -> bool:
        return self.magnet is not None and not self.content_changed and not self.guide_changed

    def lines(self) -> list[str]:
        if self.magnet is None:
            guide = " with its guide" if self.guide else ""
            return [f"{self.slug}: new magnet {self.title!r}, {len(self.files)} files{guide}"]
        if self.unchanged:
            return [f"{self.slug}: unchanged"]
        lines = []
        if self.content_changed:
            assert self.impact is not None
            lines.append(f"{self.slug}: new version")
            lines += [f"  {line}" for line in self.impact.as_lines()]
        if self.guide_changed:
            lines.append(f"{self.slug}: new guide PDF")
        return lines


def magnet_folders(root: Path) -> list[Path]:
    """ROOT itself when it holds sequence.toml, else each folder in it that does."""
    if (root / SEQUENCE).is_file():
        return [root]
    if not root.is_dir():
        raise ContentFolderError(f"{root}: no such folder")
    found = sorted(p for p in root.iterdir() if (p / SEQUENCE).is_file())
    if not found:
        raise ContentFolderError(f"{root}: no sequence.toml in it or in any folder in it")
    return found


def plan_import(ctx: Context, root: Path) -> list[Planned]:
    """What importing the folder(s) would do; changes nothing."""
    planned = [_plan(folder) for folder in magnet_folders(root)]
    slugs = [p.slug for p in planned]
    twice = next((s for s in slugs if slugs.count(s) > 1), None)
    if twice is not None:
        raise ContentFolderError(f"two folders are magnet {twice!r}")
    return planned


def _plan(folder: Path) -> Planned:
    try:
        files = read_folder(folder)
        sequence = load_files(files, where=f"{folder.name}/{SEQUENCE}")
        slug = check_slug(str(sequence.magnet.get("slug") or folder.name))
    except (SequenceError, MagnetError, OSError) as exc:
        raise ContentFolderError(f"{folder}: {exc}") from None
    title = str(sequence.magnet.get("title") or sequence.guide.get("title") or slug)
    guide = _guide(folder)
    magnet = by_slug(slug)
    if magnet is None:
        return Planned(folder, slug, title, None, files, guide, True, guide is not None, None)
    if magnet.managed_by_file:
        raise ContentFolderError(
            f"{folder}: magnet {slug!r} is managed by the file {magnet.managed_by_file}: "
            "edit that file instead (or unset SEQUENCE_FILE)"
        )
    current = published_version(magnet)
    changed = current is None or current.fingerprint != fingerprint(files)
    old = sequence_of(current.id, current.fingerprint) if current else None
    impact = impact_of(old, sequence, magnet.id) if changed else None
    guide_changed = guide is not None and guide_key(guide) != magnet.guide_key
    return Planned(folder, slug, title, magnet, files, guide, changed, guide_changed, impact)


def _guide(folder: Path) -> bytes | None:
    path = folder / GUIDE_FILE
    if not path.is_file():
        return None
    data = path.read_bytes()
    try:
        check_pdf(data)
    except ValueError as exc:
        raise ContentFolderError(f"{path}: {exc}") from None
    return data


def apply_import(ctx: Context, planned: list[Planned], by: str) -> int:
    """Create or update the magnets as planned; returns how many changed. Each magnet's new
    version is published (one commit each, as publish does)."""
    changed = 0
    for item in planned:
        if item.unchanged:
            continue
        changed += 1
        magnet = item.magnet
        if magnet is None:
            magnet = create(item.slug, item.title, item.files, by)
        elif item.content_changed:
            version = new_version(magnet, item.files, by, note=f"imported from {item.folder}")
            name_from(magnet, load_files(item.files))
            publish(ctx, magnet, version, by, over=ANY)  # the CLI's: over whatever is in force
        if item.guide is not None and item.guide_changed:
            magnet.guide_key = store_guide(ctx.settings, item.guide)
        db.session.commit()
    ctx.forget_published()
    return changed


def export_all(ctx: Context, root: Path) -> list[Path]:
    """Every magnet not archived as a folder named by its slug: its published files, byte
    for byte, and its uploaded guide as guide.pdf."""
    from ..content.magnets import active

    written = []
    for magnet in active():
        version = published_version(magnet)
        if version is None:
            continue
        folder = root / magnet.slug
        if folder.exists() and any(folder.iterdir()):
            raise ContentFolderError(f"{folder} exists and is not empty: export into a new folder")
        folder.mkdir(parents=True, exist_ok=True)
        write_folder(files_of(version), folder)
        if magnet.guide_key is not None:
            (folder / GUIDE_FILE).write_bytes(guide_pdf(ctx.settings, magnet.guide_key))
        written.append(folder)
    return written
