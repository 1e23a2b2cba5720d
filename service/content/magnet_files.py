"""A magnet's content as a map of files, the layout of email_templates/ (sequence.toml,
`<template>/subject.txt|body.txt|body.html`, `_base/*`): read from a folder, written back
byte for byte, and parsed into a Sequence with the sequence file's rules."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from .rendering import TemplateFiles, unsafe_reach
from .sequence import Sequence, SequenceError, parse_sequence

SEQUENCE = "sequence.toml"
TEMPLATE_SUFFIXES = (".txt", ".html", ".css", ".md")  # what a template folder may hold
MAX_FILE = 512 * 1024  # characters: a template is text, not a store for other things


def read_sequence_folder(path: Path) -> dict[str, str]:
    """The files of the folder holding the sequence file at `path` (which may have another
    name: SEQUENCE_FILE), with that file as sequence.toml."""
    files = read_folder(path.parent, with_sequence=False)
    files[SEQUENCE] = _read_text(path)
    return files


def read_folder(folder: Path, with_sequence: bool = True) -> dict[str, str]:
    """sequence.toml and every template file one folder down (hidden files and caches left
    out), as text keyed by relative POSIX path; the bytes are kept exactly (CRLF too)."""
    files: dict[str, str] = {}
    if with_sequence:
        files[SEQUENCE] = _read_text(folder / SEQUENCE)
    for sub in sorted(folder.iterdir()):
        if not sub.is_dir() or sub.name.startswith((".", "__")):
            continue
        for path in sorted(sub.iterdir()):
            if path.is_file() and path.suffix in TEMPLATE_SUFFIXES and not _hidden(path):
                files[f"{sub.name}/{path.name}"] = _read_text(path)
    return files


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise SequenceError(f"{path}: not UTF-8 text") from None


def write_folder(files: Mapping[str, str], folder: Path) -> None:
    """Write the files under `folder` as read_folder read them (the same bytes)."""
    for name, text in files.items():
        path = folder / checked_name(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))


def checked_name(name: str) -> str:
    """The name, if it is sequence.toml or `<folder>/<file>` with a template suffix."""
    parts = PurePosixPath(name).parts
    ok = name == SEQUENCE or (
        len(parts) == 2
        and all(p not in ("", ".", "..") and not p.startswith(".") for p in parts)
        and PurePosixPath(name).suffix in TEMPLATE_SUFFIXES
        and "\\" not in name
    )
    if not ok:
        raise SequenceError(f"{name!r} is not a content file (sequence.toml or folder/file)")
    return name


def fingerprint(files: Mapping[str, str]) -> str:
    """The SHA-256 of the files in a canonical form: equal content, equal fingerprint."""
    canonical = json.dumps(dict(sorted(files.items())), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_files(files: Mapping[str, str], where: str = SEQUENCE) -> Sequence:
    """Parse a version's files as load_sequence parses a folder; raise SequenceError with
    one line naming the place, a template the sandbox would refuse included."""
    if SEQUENCE not in files:
        raise SequenceError(f"{where}: no sequence.toml among the files")
    for name, text in files.items():
        checked_name(name)
        if len(text) > MAX_FILE:
            raise SequenceError(f"{name}: longer than {MAX_FILE} characters")
    names = {name.split("/")[0] for name in files if name.endswith("/subject.txt")}
    templates = TemplateFiles(fingerprint(files), dict(files))
    sequence = parse_sequence(files[SEQUENCE], names, templates, where)
    _refuse_unsafe(files, sequence)
    return sequence


def _refuse_unsafe(files: Mapping[str, str], sequence: Sequence) -> None:
    """The first template that reaches past the sandbox, named by the step that uses it."""
    users: dict[str, str] = {}
    for step in sequence.steps:
        users.setdefault(step.template, f"step {step.id!r}")
    for name in sorted(files):
        if name == SEQUENCE or not name.endswith((".txt", ".html")):
            continue
        problem = unsafe_reach(files[name], name)
        if problem is not None:
            folder = name.split("/")[0]
            who = users.get(folder, f"template folder {folder!r}")
            raise SequenceError(f"{who}: template {name!r} {problem}")
