"""Fetch dataset files: atomic, resumable, checksum-verified, with safe archive extraction.

Dataset files are large and publishers' servers flaky, so a transfer has to survive interruptions
(HTTP Range resume), must never leave a half-written file where the pipeline would read it, and
must refuse data whose sha256 differs from the registry (config/datasets.yaml).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO

from tqdm import tqdm

from flux.errors import ChecksumMismatchError, DownloadError
from flux.io import DIRECTORY_MODE

logger = logging.getLogger(__name__)

PART_SUFFIX = ".part"
MISMATCH_SUFFIX = ".sha256-mismatch"
MARKER_PREFIX = ".extracted-"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
RETRY_STATUSES = frozenset({408, 429})  # and every 5xx
RESUME_HINT = "run the same `flux download` command again to resume"
USER_AGENT = "flux-download/1 (+python-urllib)"
REGISTRY = "config/datasets.yaml"

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"^\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class RemoteFile:
    """One registry entry; validated on construction so a bad entry fails before any transfer."""

    url: str  # http(s):// or file:// URL
    path: str  # destination, relative to the dataset directory
    sha256: str | None = None  # None: the publisher gives no stable checksum
    extract: bool = False  # unpack the verified archive into `path` minus its archive suffix
    registry: str = REGISTRY  # the file that lists it, named in error messages

    def __post_init__(self) -> None:
        scheme = urllib.parse.urlsplit(self.url).scheme.lower()
        if scheme not in ("http", "https", "file"):
            raise DownloadError(
                f"{self.url!r}: unsupported URL scheme {scheme!r}; "
                f"use an http://, https:// or file:// URL for this file in {self.registry}"
            )
        if not PurePosixPath(self.path.replace("\\", "/")).parts or _escapes(self.path):
            raise DownloadError(
                f"{self.url}: destination path {self.path!r} must be a relative path inside the "
                f"dataset directory (not absolute, no '..'); fix its `path` in {self.registry}"
            )
        if self.sha256 is not None:
            digest = self.sha256.strip().lower()
            if not _SHA256_HEX.fullmatch(digest):
                raise DownloadError(
                    f"{self.url}: sha256 {self.sha256!r} is not 64 hex digits; fix it in "
                    f"{self.registry} (or set it to null if the publisher gives no checksum)"
                )
            object.__setattr__(self, "sha256", digest)
        if self.extract and archive_suffix(self.path) is None:
            raise DownloadError(
                f"{self.url}: extract is set but {self.path!r} has no archive suffix "
                f"({', '.join(ARCHIVE_SUFFIXES)}); fix `path` or `extract` in {self.registry}"
            )


# How a file is known to be whole: its sha256 matched the registry's; its size matched the length the server (or
# the local mirror) declared; nothing (a server that sends no length, a registry without sha256: a transfer cut
# short cannot be told from a whole file); or it was present before and, without a sha256, not checked again.
COMPLETE_SHA256, COMPLETE_LENGTH, COMPLETE_UNVERIFIABLE, COMPLETE_PRESENT = "sha256", "length", "unverifiable", "present"
UNVERIFIED = (COMPLETE_UNVERIFIABLE, COMPLETE_PRESENT)


@dataclass(frozen=True)
class DownloadResult:
    path: Path  # final file path
    sha256: str
    size: int
    resumed: bool  # bytes from an earlier partial transfer were reused
    skipped: bool  # the file was already present and verified; no network used
    extracted_to: Path | None
    completeness: str = COMPLETE_SHA256  # one of the COMPLETE_* values


def sha256_of(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hash in chunks so multi-gigabyte archives do not have to fit in memory."""
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            hasher.update(chunk)
    return hasher.hexdigest()


def archive_suffix(path: str) -> str | None:
    """The archive suffix `extract` strips to name the target directory, or None."""
    lowered = path.lower()
    return next((s for s in ARCHIVE_SUFFIXES if lowered.endswith(s)), None)


def download(
    remote: RemoteFile,
    dest_root: Path,
    *,
    retries: int = 5,
    backoff_s: float = 1.0,
    timeout_s: float = 60.0,
    chunk_bytes: int = 1 << 20,
    progress: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> DownloadResult:
    """Make `dest_root/remote.path` hold the verified file, transferring only what is missing.

    `sleep` is injectable so tests exercise the retry backoff without waiting.
    """
    dest = Path(dest_root) / remote.path
    kept = _sibling(dest, MISMATCH_SUFFIX)
    present = _verify_present(remote, dest, kept, chunk_bytes)
    if present is not None:
        digest, resumed, skipped = present, False, True
        completeness = COMPLETE_SHA256 if remote.sha256 is not None else COMPLETE_PRESENT
    else:
        digest, resumed, completeness = _fetch(
            remote,
            dest,
            retries=retries,
            backoff_s=backoff_s,
            timeout_s=timeout_s,
            chunk_bytes=chunk_bytes,
            progress=progress,
            sleep=sleep,
        )
        skipped = False
    size = dest.stat().st_size
    extracted_to = None
    if remote.extract:
        suffix = archive_suffix(remote.path)
        assert suffix is not None  # RemoteFile.__post_init__ guarantees it
        extracted_to = _extract(dest, digest, suffix)
    if completeness == COMPLETE_UNVERIFIABLE:
        logger.warning(
            "%s: the server sent no length and %s gives no sha256, so a transfer cut short cannot be told from the "
            "whole file (%d bytes received); it is recorded as unverifiable",
            remote.url, remote.registry, size,
        )  # fmt: skip
    return DownloadResult(dest, digest, size, resumed, skipped, extracted_to, completeness)


# --------------------------------------------------------------------------- already present


def _sibling(dest: Path, suffix: str) -> Path:
    return dest.with_name(dest.name + suffix)


def _verify_present(remote: RemoteFile, dest: Path, kept: Path, chunk_bytes: int) -> str | None:
    """Digest of an already usable `dest` (promoting a kept file that now verifies), else None."""
    if dest.exists() and not dest.is_file():
        raise DownloadError(
            f"{dest} exists but is not a regular file, so {remote.url} cannot be stored there; "
            "move it away and run the same `flux download` command again"
        )
    if dest.is_file():
        actual = sha256_of(dest, chunk_bytes)
        if remote.sha256 is None or actual == remote.sha256:
            logger.info("%s already present (sha256 %s), not downloading", dest, actual)
            return actual
        os.replace(dest, kept)
        raise ChecksumMismatchError(_mismatch_message(remote, actual, kept, f"the file already at {dest}"))
    if remote.sha256 is not None and kept.is_file():
        # An earlier transfer mismatched. Re-downloading blindly would likely mismatch again, so
        # the user decides: delete the kept file, or fix the registry (then the file is reused).
        actual = sha256_of(kept, chunk_bytes)
        if actual == remote.sha256:
            os.replace(kept, dest)
            logger.info("%s matches the registry sha256 now; using it as %s", kept, dest)
            return actual
        raise ChecksumMismatchError(_mismatch_message(remote, actual, kept, "an earlier download of this file"))
    return None


def _mismatch_message(remote: RemoteFile, actual: str, kept: Path, origin: str) -> str:
    return (
        f"{remote.url}: sha256 mismatch for {origin}: expected {remote.sha256}, got {actual}. "
        f"The data were moved aside to {kept} and will not be used. Check this file's sha256 in "
        f"{remote.registry} against the publisher's (the publisher may have changed the file, or the "
        f"transfer was corrupted); delete {kept} and run the same command again to retry. If the "
        f"registry is fixed to {actual}, the kept file is reused without downloading."
    )


# --------------------------------------------------------------------------- transfer


class _Transient(Exception):
    """A failure worth retrying (network hiccup, overloaded server); never leaves this module."""


class _Part:
    """The `.part` file plus the running sha256 of exactly the bytes it holds.

    Keeping hash and size in step across attempts means a resume never re-reads the file.
    """

    def __init__(self, path: Path, chunk_bytes: int) -> None:
        self.path = path
        self.hasher = hashlib.sha256()
        self.size = 0
        if path.is_file():
            with open(path, "rb") as f:
                while chunk := f.read(chunk_bytes):
                    self.hasher.update(chunk)
                    self.size += len(chunk)

    def reset(self) -> None:
        self.path.write_bytes(b"")
        self.hasher = hashlib.sha256()
        self.size = 0

    def append_from(self, source: BinaryIO, expected: int | None, chunk_bytes: int, bar: tqdm) -> None:
        """Copy `source` to the end of the part; a short body is transient so the retry resumes."""
        received = 0
        with open(self.path, "ab") as out:
            while True:
                try:
                    chunk = source.read(chunk_bytes)
                except (http.client.HTTPException, OSError) as err:  # OSError covers timeouts
                    raise _Transient(f"connection lost after {received} bytes: {err!r}") from err
                if not chunk:
                    break
                try:
                    out.write(chunk)
                except OSError as err:
                    raise DownloadError(
                        f"cannot write {self.path}: {err}; free disk space or fix permissions, then {RESUME_HINT}"
                    ) from err
                self.hasher.update(chunk)
                self.size += len(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if expected is not None and received < expected:
            raise _Transient(f"connection closed after {received} of {expected} bytes")


def _fetch(
    remote: RemoteFile,
    dest: Path,
    *,
    retries: int,
    backoff_s: float,
    timeout_s: float,
    chunk_bytes: int,
    progress: bool,
    sleep: Callable[[float], None],
) -> tuple[str, bool, str]:
    """Transfer into `<dest>.part`, verify, then rename; returns (sha256, resumed, completeness)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _Part(_sibling(dest, PART_SUFFIX), chunk_bytes)
    if part.size:
        logger.info("downloading %s -> %s (resuming after %d bytes)", remote.url, dest, part.size)
    else:
        logger.info("downloading %s -> %s", remote.url, dest)
    is_file_url = urllib.parse.urlsplit(remote.url).scheme.lower() == "file"
    bar = tqdm(
        desc=dest.name,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not progress,
        # in a job log (not a terminal) a line every 30 s shows progress without flooding the file
        mininterval=0.1 if sys.stderr.isatty() else 30,
    )
    with bar:
        attempt = 0
        while True:
            try:
                if is_file_url:
                    resumed, length_known = _copy_local(remote.url, part, chunk_bytes, bar), True
                else:
                    resumed, length_known = _http_attempt(remote.url, part, timeout_s, chunk_bytes, bar)
                break
            except _Transient as err:
                if attempt >= retries:
                    raise DownloadError(
                        f"{remote.url}: download failed after {attempt + 1} attempts (last error: "
                        f"{err}); {part.size} bytes received so far are kept in {part.path} for "
                        f"a later resume; {RESUME_HINT}"
                    ) from err
                delay = backoff_s * 2**attempt
                logger.warning("%s: %s; retry %d of %d in %.1f s", remote.url, err, attempt + 1, retries, delay)
                sleep(delay)
                attempt += 1

    on_disk = part.path.stat().st_size
    if on_disk != part.size:
        raise DownloadError(
            f"{part.path} holds {on_disk} bytes but this process wrote {part.size}; another "
            f"process may be downloading {remote.url} at the same time. Stop it, delete "
            f"{part.path} and run `flux download` again"
        )
    with open(part.path, "rb+") as f:
        os.fsync(f.fileno())  # the rename below must not publish data still in the page cache
    actual = part.hasher.hexdigest()
    if remote.sha256 is not None and actual != remote.sha256:
        kept = _sibling(dest, MISMATCH_SUFFIX)
        os.replace(part.path, kept)
        origin = "the downloaded file" + (" (partly resumed from an earlier partial transfer)" if resumed else "")
        raise ChecksumMismatchError(_mismatch_message(remote, actual, kept, origin))
    os.replace(part.path, dest)
    logger.info("downloaded %s (%d bytes, sha256 %s)", dest, part.size, actual)
    if remote.sha256 is not None:
        return actual, resumed, COMPLETE_SHA256
    return actual, resumed, COMPLETE_LENGTH if length_known else COMPLETE_UNVERIFIABLE


def _http_attempt(url: str, part: _Part, timeout_s: float, chunk_bytes: int, bar: tqdm) -> tuple[bool, bool]:
    """One request; returns (whether earlier bytes were reused, whether the server declared the file's length).
    Raises _Transient to retry."""
    start = part.size
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as err:
        try:
            return _http_error(url, err, part, bar)
        finally:
            err.close()
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise _Transient(f"request failed: {err!r}") from err

    with response:
        if response.status == 206:
            content_range = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if content_range is None or int(content_range.group(1)) != start:
                part.reset()
                raise _Transient(
                    f"server answered Range bytes={start}- with Content-Range "
                    f"{response.headers.get('Content-Range')!r}; restarting from zero"
                )
            first, last, total_text = content_range.groups()
            total = None if total_text == "*" else int(total_text)
            expected: int | None = int(last) - int(first) + 1
        else:
            if start:
                logger.info("%s: server ignored the Range request; restarting from zero", url)
                part.reset()
            total = expected = _int_header(response.headers.get("Content-Length"))
        bar.reset(total=total)
        bar.update(part.size)
        resumed = part.size > 0
        part.append_from(response, expected, chunk_bytes, bar)
    if total is not None and part.size != total:
        raise _Transient(f"have {part.size} of {total} bytes")
    return resumed, total is not None


def _http_error(url: str, err: urllib.error.HTTPError, part: _Part, bar: tqdm) -> tuple[bool, bool]:
    """Classify an HTTP error status: complete (416 on a full part), transient, or fatal."""
    status = err.code
    if status == 416 and part.size:
        unsatisfied = _UNSATISFIED_RANGE.match((err.headers or {}).get("Content-Range", ""))
        if unsatisfied is not None and int(unsatisfied.group(1)) == part.size:
            bar.reset(total=part.size)
            bar.update(part.size)
            return True, True  # the part already holds the whole file, whose length the server declared
        have = part.size
        part.reset()
        raise _Transient(
            f"server rejected resuming at byte {have}: the part file does not fit the remote file; restarting from zero"
        )
    if status in RETRY_STATUSES or 500 <= status < 600:
        raise _Transient(f"HTTP {status} {err.reason}")
    hint = (
        "the server refused access; the dataset may require registration or credentials"
        if status in (401, 403)
        else "the file may have moved"
    )
    raise DownloadError(
        f"{url}: HTTP {status} {err.reason} (not retried); {hint}. Check the URL of this file "
        f"in {REGISTRY} and the publisher's download page"
    )


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _copy_local(url: str, part: _Part, chunk_bytes: int, bar: tqdm) -> bool:
    """file:// source (a local mirror): same atomicity and verification as HTTP, resume by seek."""
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise DownloadError(f"{url}: file:// URLs must name a local path (file:///abs/path); fix it in {REGISTRY}")
    source = Path(urllib.request.url2pathname(parts.path))
    try:
        with open(source, "rb") as f:
            total = os.fstat(f.fileno()).st_size
            if part.size > total:
                part.reset()
            resumed = part.size > 0
            f.seek(part.size)
            bar.reset(total=total)
            bar.update(part.size)
            part.append_from(f, total - part.size, chunk_bytes, bar)
    except OSError as err:
        raise DownloadError(
            f"{url}: cannot read the local mirror file {source}: {err}; check that the mirror is "
            f"mounted and the URL in {REGISTRY} is right"
        ) from err
    return resumed


# --------------------------------------------------------------------------- extraction


def _extract(archive: Path, digest: str, suffix: str) -> Path:
    """Unpack into a staging directory, then rename it into place, so a crash never leaves a
    half-extracted tree that looks finished; the marker ties the tree to the archive's hash."""
    target = archive.with_name(archive.name[: -len(suffix)])
    marker_name = f"{MARKER_PREFIX}{digest}"
    if (target / marker_name).is_file():
        logger.info("%s already extracted to %s", archive, target)
        return target
    logger.info("extracting %s -> %s", archive, target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.extracting-", dir=archive.parent))
    os.chmod(staging, DIRECTORY_MODE)  # mkdtemp's 0700 would hide the extracted tree from the group
    try:
        if suffix == ".zip":
            _extract_zip(archive, staging)
        else:
            _extract_tar(archive, staging)
        (staging / marker_name).touch()
        _swap_into_place(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("extracted %s", target)
    return target


def _swap_into_place(staging: Path, target: Path) -> None:
    if not (target.exists() or target.is_symlink()):
        os.replace(staging, target)
        return
    logger.warning("%s exists without a marker for this archive; replacing it", target)
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex}")
    os.replace(target, old)
    os.replace(staging, target)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink()


def _escapes(name: str) -> bool:
    """Absolute, drive-qualified or containing '..': could land outside the directory."""
    posix = PurePosixPath(name.replace("\\", "/"))
    return posix.is_absolute() or bool(PureWindowsPath(name).drive) or ".." in posix.parts


def _unsafe_member(archive: Path, member: str, why: str) -> DownloadError:
    return DownloadError(
        f"{archive}: refusing to extract member {member!r}: {why}. The archive may be malicious "
        f"or corrupt; nothing was extracted. Check its source and the entry in {REGISTRY}"
    )


def _extract_tar(archive: Path, staging: Path) -> None:
    """tarfile's `data` filter refuses absolute or `..` paths, links that leave the target (also through a chain
    of links) and device files; the caller removes the half-written staging directory."""
    if not hasattr(tarfile, "data_filter"):
        raise DownloadError(f"{archive}: safe tar extraction needs Python >= 3.10.12 (tarfile's data filter); upgrade Python")
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
    except tarfile.FilterError as err:
        raise _unsafe_member(archive, err.tarinfo.name, str(err)) from err
    except (tarfile.TarError, OSError) as err:
        raise DownloadError(
            f"{archive}: extraction failed: {err}; nothing was extracted. If the archive is "
            "corrupt, delete it and run the same `flux download` command again"
        ) from err


def _extract_zip(archive: Path, staging: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if _escapes(info.filename):
                    raise _unsafe_member(archive, info.filename, "absolute path or '..' component")
            zf.extractall(staging)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as err:
        raise DownloadError(
            f"{archive}: extraction failed: {err}; nothing was extracted. If the archive is "
            "corrupt, delete it and run the same `flux download` command again"
        ) from err
