"""Downloader against a real local HTTP server that can misbehave on purpose, per path."""

from __future__ import annotations

import hashlib
import io
import logging
import random
import re
import socket
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from flux.data.download import DownloadResult, RemoteFile, download, sha256_of
from flux.errors import ChecksumMismatchError, DownloadError

DATA = random.Random(20250318).randbytes(300_000)
HALF = len(DATA) // 2
CHUNK = 64 * 1024
RESUME_HINT = "run the same `flux download` command again to resume"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- test server


@dataclass
class Behaviour:
    """How the server treats one path; request counters are 1-based per path."""

    statuses: list[int] = field(default_factory=list)  # error statuses for the first GETs
    drop: int = 0  # the next `drop` GETs send full headers but only half the body
    stall: int = 0  # the next `stall` GETs send half the body, then hang
    ignore_range: bool = False  # always answer 200 with the whole file
    wrong_range: int = 0  # the next `wrong_range` Range GETs answer 206 starting at byte 0
    no_length: bool = False  # send no Content-Length (the body ends when the connection closes)


@dataclass
class FixtureServer:
    port: int = 0
    files: dict[str, bytes] = field(default_factory=dict)
    behaviour: dict[str, Behaviour] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)

    def add(self, name: str, data: bytes = DATA, **behaviour: object) -> str:
        self.files[name] = data
        self.behaviour[name] = Behaviour(**behaviour)  # type: ignore[arg-type]
        return self.url(name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def ranges(self, name: str) -> list[str | None]:
        return [rng for path, rng in self.requests if path == name]


def _handler(state: FixtureServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            rng = self.headers.get("Range")
            with state.lock:
                state.requests.append((name, rng))
                nth = len(state.ranges(name))
            if name not in state.files:
                self.send_error(404)
                return
            data, how = state.files[name], state.behaviour[name]
            if nth <= len(how.statuses):
                self.send_error(how.statuses[nth - 1])
                return
            nth -= len(how.statuses)

            start = 0
            if rng is not None and not how.ignore_range:
                match = re.fullmatch(r"bytes=(\d+)-", rng)
                assert match, rng
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if how.wrong_range:
                    how.wrong_range -= 1
                    start = 0
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            if not how.no_length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                if nth <= how.drop:
                    self.wfile.write(body[: len(body) // 2])
                    return  # HTTP/1.0: returning closes the connection mid-body
                if nth <= how.drop + how.stall:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    state.release.wait(timeout=10)
                self.wfile.write(body)
            except OSError:  # the client gave up on a stalled response
                pass

    return Handler


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    state = FixtureServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def sleeps() -> list[float]:
    return []


def fetch(remote: RemoteFile, root: Path, sleeps: list[float], **kwargs: object) -> DownloadResult:
    options: dict[str, object] = {"progress": False, "chunk_bytes": CHUNK, "sleep": sleeps.append}
    options.update(kwargs)
    return download(remote, root, **options)  # type: ignore[arg-type]


def test_sha256_of_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(DATA)
    assert sha256_of(path, chunk_bytes=1000) == sha(DATA)
    assert sha256_of(path) != sha(DATA[:-1])


# --------------------------------------------------------------------------- plain transfer


def test_fresh_download_is_verified_and_atomic(
    server: FixtureServer, tmp_path: Path, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    url = server.add("a.bin")
    caplog.set_level(logging.INFO, logger="flux.data.download")
    result = fetch(RemoteFile(url, "sub/a.bin", sha(DATA).upper()), tmp_path, sleeps, progress=True)

    dest = tmp_path / "sub" / "a.bin"
    assert result == DownloadResult(dest, sha(DATA), len(DATA), False, False, None, "sha256")
    assert dest.read_bytes() == DATA
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.bin"]  # no .part left behind
    assert server.ranges("a.bin") == [None]
    assert sleeps == []
    messages = " | ".join(r.getMessage() for r in caplog.records)
    assert f"downloading {url}" in messages and f"downloaded {dest}" in messages


def test_without_registry_checksum_the_observed_hash_is_returned(
    server: FixtureServer, tmp_path: Path, sleeps: list[float]
) -> None:
    result = fetch(RemoteFile(server.add("a.bin"), "a.bin"), tmp_path, sleeps)
    assert result.sha256 == sha(DATA)
    assert result.size == len(DATA)
    assert (tmp_path / "a.bin").read_bytes() == DATA


@pytest.mark.parametrize(
    ("registry_sha256", "no_length", "drop", "completeness", "size"),
    [
        (True, True, 0, "sha256", len(DATA)),  # a registry sha256 proves the file whole
        (False, False, 0, "length", len(DATA)),  # the server's length does
        (False, True, 0, "unverifiable", len(DATA)),  # neither: a whole file cannot be told ...
        (False, True, 1, "unverifiable", len(DATA) // 2),  # ... from one cut short, which is accepted, but said
    ],
)
def test_how_a_download_is_known_to_be_whole_is_recorded(
    server: FixtureServer, tmp_path: Path, sleeps: list[float], caplog, registry_sha256, no_length, drop, completeness, size
) -> None:
    url = server.add("a.bin", no_length=no_length, drop=drop)
    result = fetch(RemoteFile(url, "a.bin", sha(DATA) if registry_sha256 else None), tmp_path, sleeps)
    assert (result.completeness, result.size) == (completeness, size)
    assert ("recorded as unverifiable" in caplog.text) == (completeness == "unverifiable")
    again = fetch(RemoteFile(url, "a.bin", sha(DATA) if registry_sha256 else None), tmp_path, sleeps)
    assert again.skipped and again.completeness == ("sha256" if registry_sha256 else "present")


# --------------------------------------------------------------------------- resume


def test_interrupted_transfer_resumes_with_range(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    url = server.add("a.bin", drop=1)
    result = fetch(RemoteFile(url, "a.bin", sha(DATA)), tmp_path, sleeps)

    assert (tmp_path / "a.bin").read_bytes() == DATA
    assert result.resumed and not result.skipped
    assert result.sha256 == sha(DATA)
    assert server.ranges("a.bin") == [None, f"bytes={HALF}-"]
    assert sleeps == [1.0]
    assert not (tmp_path / "a.bin.part").exists()


def test_part_file_from_an_earlier_run_is_resumed(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    (tmp_path / "a.bin.part").write_bytes(DATA[:100_000])
    result = fetch(RemoteFile(server.add("a.bin"), "a.bin", sha(DATA)), tmp_path, sleeps)

    assert (tmp_path / "a.bin").read_bytes() == DATA
    assert result.resumed
    assert server.ranges("a.bin") == ["bytes=100000-"]
    assert sleeps == []


def test_server_ignoring_range_restarts_from_zero(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    # Garbage in the part: appending the 200 body to it would fail the checksum.
    (tmp_path / "a.bin.part").write_bytes(random.Random(1).randbytes(1000))
    url = server.add("a.bin", ignore_range=True)
    result = fetch(RemoteFile(url, "a.bin", sha(DATA)), tmp_path, sleeps)

    assert (tmp_path / "a.bin").read_bytes() == DATA
    assert not result.resumed
    assert server.ranges("a.bin") == ["bytes=1000-"]
    assert sleeps == []


def test_206_with_wrong_content_range_restarts_from_zero(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    (tmp_path / "a.bin.part").write_bytes(DATA[:1000])
    url = server.add("a.bin", wrong_range=1)
    result = fetch(RemoteFile(url, "a.bin", sha(DATA)), tmp_path, sleeps)

    assert (tmp_path / "a.bin").read_bytes() == DATA
    assert not result.resumed
    assert server.ranges("a.bin") == ["bytes=1000-", None]
    assert sleeps == [1.0]


def test_416_on_a_complete_part_file_finishes_without_transfer(
    server: FixtureServer, tmp_path: Path, sleeps: list[float]
) -> None:
    (tmp_path / "a.bin.part").write_bytes(DATA)
    result = fetch(RemoteFile(server.add("a.bin"), "a.bin", sha(DATA)), tmp_path, sleeps)

    assert (tmp_path / "a.bin").read_bytes() == DATA
    assert result.resumed and result.sha256 == sha(DATA)
    assert server.ranges("a.bin") == [f"bytes={len(DATA)}-"]
    assert sleeps == []


def test_416_on_an_oversized_part_file_restarts(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    (tmp_path / "a.bin.part").write_bytes(DATA + b"extra")
    result = fetch(RemoteFile(server.add("a.bin"), "a.bin", sha(DATA)), tmp_path, sleeps)

    assert (tmp_path / "a.bin").read_bytes() == DATA
    assert not result.resumed
    assert server.ranges("a.bin") == [f"bytes={len(DATA) + 5}-", None]


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize("status", [503, 500, 429, 408])
def test_transient_statuses_are_retried_with_backoff(
    server: FixtureServer, tmp_path: Path, sleeps: list[float], status: int
) -> None:
    url = server.add("a.bin", statuses=[status, status])
    result = fetch(RemoteFile(url, "a.bin", sha(DATA)), tmp_path, sleeps)

    assert (tmp_path / "a.bin").read_bytes() == DATA
    assert sleeps == [1.0, 2.0]
    assert len(server.ranges("a.bin")) == 3
    assert not result.resumed


def test_backoff_scales_with_backoff_s(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    url = server.add("a.bin", statuses=[503, 503, 503])
    fetch(RemoteFile(url, "a.bin", sha(DATA)), tmp_path, sleeps, backoff_s=0.5)
    assert sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("status", [404, 403])
def test_client_errors_fail_at_once(server: FixtureServer, tmp_path: Path, sleeps: list[float], status: int) -> None:
    url = server.add("a.bin", statuses=[status] * 10)
    with pytest.raises(DownloadError) as info:
        fetch(RemoteFile(url, "a.bin", sha(DATA)), tmp_path, sleeps)

    assert not isinstance(info.value, ChecksumMismatchError)
    assert url in str(info.value) and str(status) in str(info.value)
    assert "config/datasets.yaml" in str(info.value)
    assert sleeps == []
    assert len(server.ranges("a.bin")) == 1
    assert not (tmp_path / "a.bin").exists()


def test_exhausted_retries_keep_the_part_for_a_later_resume(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    url = server.add("a.bin", drop=100)
    with pytest.raises(DownloadError) as info:
        fetch(RemoteFile(url, "a.bin", sha(DATA)), tmp_path, sleeps, retries=3)

    # Each attempt gets half of what remains: 150000, +75000, +37500, +18750.
    received = 150_000 + 75_000 + 37_500 + 18_750
    part = tmp_path / "a.bin.part"
    assert part.read_bytes() == DATA[:received]
    assert not (tmp_path / "a.bin").exists()
    assert sleeps == [1.0, 2.0, 4.0]
    assert server.ranges("a.bin") == [None, "bytes=150000-", "bytes=225000-", "bytes=262500-"]
    message = str(info.value)
    assert url in message and str(received) in message and str(part) in message
    assert RESUME_HINT in message

    # ... and the next run does resume from there.
    server.behaviour["a.bin"].drop = 0
    result = fetch(RemoteFile(url, "a.bin", sha(DATA)), tmp_path, sleeps)
    assert result.resumed and (tmp_path / "a.bin").read_bytes() == DATA
    assert server.ranges("a.bin")[-1] == f"bytes={received}-"


def test_socket_timeout_is_retried_and_resumed(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    url = server.add("a.bin", stall=1)
    result = fetch(RemoteFile(url, "a.bin", sha(DATA)), tmp_path, sleeps, timeout_s=0.3)

    assert (tmp_path / "a.bin").read_bytes() == DATA
    assert result.resumed
    # Only whole chunks reach the part file; the chunk cut short by the timeout is fetched again.
    assert server.ranges("a.bin") == [None, f"bytes={HALF // CHUNK * CHUNK}-"]
    assert sleeps == [1.0]


def test_connection_refused_is_retried(tmp_path: Path, sleeps: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/a.bin"
    with pytest.raises(DownloadError) as info:
        fetch(RemoteFile(url, "a.bin", sha(DATA)), tmp_path, sleeps, retries=2)
    assert sleeps == [1.0, 2.0]
    assert url in str(info.value) and "3 attempts" in str(info.value)


# --------------------------------------------------------------------------- verification


def test_checksum_mismatch_keeps_the_data_aside(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    expected = sha(b"what the registry says")
    url = server.add("a.bin")
    with pytest.raises(ChecksumMismatchError) as info:
        fetch(RemoteFile(url, "a.bin", expected), tmp_path, sleeps)

    kept = tmp_path / "a.bin.sha256-mismatch"
    assert not (tmp_path / "a.bin").exists()
    assert not (tmp_path / "a.bin.part").exists()
    assert kept.read_bytes() == DATA
    message = str(info.value)
    for needle in (url, expected, sha(DATA), str(kept), "config/datasets.yaml"):
        assert needle in message
    assert sleeps == []


def test_kept_mismatch_blocks_until_deleted(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    good = b"the publisher's real bytes" * 100
    url = server.add("a.bin", DATA)  # serves corrupted bytes at first
    remote = RemoteFile(url, "a.bin", sha(good))
    with pytest.raises(ChecksumMismatchError):
        fetch(remote, tmp_path, sleeps)
    kept = tmp_path / "a.bin.sha256-mismatch"

    with pytest.raises(ChecksumMismatchError) as info:  # no blind re-download
        fetch(remote, tmp_path, sleeps)
    assert len(server.requests) == 1
    assert str(kept) in str(info.value) and sha(DATA) in str(info.value)

    kept.unlink()
    server.files["a.bin"] = good
    result = fetch(remote, tmp_path, sleeps)
    assert (tmp_path / "a.bin").read_bytes() == good and result.sha256 == sha(good)
    assert len(server.requests) == 2


def test_kept_file_is_reused_once_the_registry_matches_it(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    url = server.add("a.bin")
    with pytest.raises(ChecksumMismatchError):
        fetch(RemoteFile(url, "a.bin", sha(b"stale registry value")), tmp_path, sleeps)

    result = fetch(RemoteFile(url, "a.bin", sha(DATA)), tmp_path, sleeps)
    assert result.skipped and result.sha256 == sha(DATA)
    assert (tmp_path / "a.bin").read_bytes() == DATA
    assert not (tmp_path / "a.bin.sha256-mismatch").exists()
    assert len(server.requests) == 1


# --------------------------------------------------------------------------- already present


def test_verified_file_is_skipped_without_network(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    (tmp_path / "a.bin").write_bytes(DATA)
    result = fetch(RemoteFile(server.add("a.bin"), "a.bin", sha(DATA)), tmp_path, sleeps)

    assert result == DownloadResult(tmp_path / "a.bin", sha(DATA), len(DATA), False, True, None)
    assert server.requests == []


def test_present_file_without_registry_checksum_is_skipped(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    (tmp_path / "a.bin").write_bytes(b"whatever is there")
    result = fetch(RemoteFile(server.add("a.bin"), "a.bin"), tmp_path, sleeps)

    assert result.skipped and result.sha256 == sha(b"whatever is there")
    assert server.requests == []


def test_present_file_with_wrong_checksum_is_moved_aside(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    (tmp_path / "a.bin").write_bytes(b"bit rot")
    with pytest.raises(ChecksumMismatchError) as info:
        fetch(RemoteFile(server.add("a.bin"), "a.bin", sha(DATA)), tmp_path, sleeps)

    assert not (tmp_path / "a.bin").exists()
    assert (tmp_path / "a.bin.sha256-mismatch").read_bytes() == b"bit rot"
    assert sha(DATA) in str(info.value) and sha(b"bit rot") in str(info.value)
    assert server.requests == []


# --------------------------------------------------------------------------- registry entry


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/abs/x", "", "..\\x", "C:/x"])
def test_unsafe_destination_path_is_rejected(tmp_path: Path, sleeps: list[float], path: str) -> None:
    root = tmp_path / "root"
    with pytest.raises(DownloadError) as info:
        fetch(RemoteFile("http://127.0.0.1:9/x", path, sha(DATA)), root, sleeps)
    assert repr(path) in str(info.value)
    assert not root.exists()


@pytest.mark.parametrize(
    ("url", "path", "sha256", "extract", "needle"),
    [
        ("ftp://host/x", "x", None, False, "scheme"),
        ("http://host/x", "x", "abc123", False, "64 hex"),
        ("http://host/x.bin", "x.bin", None, True, "archive suffix"),
    ],
)
def test_invalid_registry_entries_are_rejected(url: str, path: str, sha256: str | None, extract: bool, needle: str) -> None:
    with pytest.raises(DownloadError, match=needle):
        RemoteFile(url, path, sha256, extract)


# --------------------------------------------------------------------------- file://


def test_file_url_is_copied_and_verified(tmp_path: Path, sleeps: list[float]) -> None:
    source = tmp_path / "mirror" / "a file.bin"
    source.parent.mkdir()
    source.write_bytes(DATA)
    root = tmp_path / "data"
    result = fetch(RemoteFile(source.as_uri(), "a.bin", sha(DATA)), root, sleeps)

    assert (root / "a.bin").read_bytes() == DATA
    assert not result.resumed and not result.skipped
    assert not (root / "a.bin.part").exists()


def test_file_url_resumes_a_part(tmp_path: Path, sleeps: list[float]) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(DATA)
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.bin.part").write_bytes(DATA[:12345])
    result = fetch(RemoteFile(source.as_uri(), "a.bin", sha(DATA)), root, sleeps)
    assert result.resumed and (root / "a.bin").read_bytes() == DATA


def test_file_url_mismatch_and_missing_source(tmp_path: Path, sleeps: list[float]) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(DATA)
    with pytest.raises(ChecksumMismatchError):
        fetch(RemoteFile(source.as_uri(), "a.bin", sha(b"other")), tmp_path / "d1", sleeps)
    assert not (tmp_path / "d1" / "a.bin").exists()

    missing = tmp_path / "missing.bin"
    with pytest.raises(DownloadError) as info:
        fetch(RemoteFile(missing.as_uri(), "a.bin"), tmp_path / "d2", sleeps)
    assert str(missing) in str(info.value)
    assert sleeps == []


# --------------------------------------------------------------------------- extraction

MEMBERS = {"clips/a.txt": b"alpha\n", "clips/sub/b.bin": DATA[:5000], "README": b"readme\n"}


def make_tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


def make_tar_with_symlink(name: str, target: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("ok.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"ok"))
        link = tarfile.TarInfo(name)
        link.type = tarfile.SYMTYPE
        link.linkname = target
        tar.addfile(link)
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "build"), [("arc.tar.gz", make_tar_gz), ("arc.zip", make_zip)])
def test_archive_is_extracted_once(server: FixtureServer, tmp_path: Path, sleeps: list[float], name: str, build) -> None:
    archive = build(MEMBERS)
    remote = RemoteFile(server.add(name, archive), f"ds/{name}", sha(archive), extract=True)
    result = fetch(remote, tmp_path, sleeps)

    target = tmp_path / "ds" / "arc"
    assert result.extracted_to == target
    for member, data in MEMBERS.items():
        assert (target / member).read_bytes() == data
    assert (target / f".extracted-{sha(archive)}").is_file()
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == sorted(["arc", name])

    (target / "clips" / "a.txt").write_bytes(b"edited")  # re-extraction would undo this
    again = fetch(remote, tmp_path, sleeps)
    assert again.skipped and again.extracted_to == target
    assert (target / "clips" / "a.txt").read_bytes() == b"edited"
    assert len(server.requests) == 1


def test_stale_tree_without_marker_is_replaced(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    archive = make_tar_gz(MEMBERS)
    stale = tmp_path / "arc" / "from-an-older-archive.txt"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    remote = RemoteFile(server.add("arc.tgz", archive), "arc.tgz", sha(archive), extract=True)
    fetch(remote, tmp_path, sleeps)

    assert not stale.exists()
    assert (tmp_path / "arc" / "README").read_bytes() == b"readme\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arc", "arc.tgz"]


def test_internal_symlink_is_allowed(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    archive = make_tar_with_symlink("sub/link", "../ok.txt")
    remote = RemoteFile(server.add("arc.tar", archive), "arc.tar", sha(archive), extract=True)
    fetch(remote, tmp_path, sleeps)
    assert (tmp_path / "arc" / "sub" / "link").read_bytes() == b"ok"


def test_absolute_tar_member_lands_inside_the_target(server: FixtureServer, tmp_path: Path, sleeps: list[float]) -> None:
    """tarfile's data filter strips the leading slash (as GNU tar does) instead of writing outside the target."""
    outside = tmp_path / "evil-absolute"
    archive = make_tar_gz({"ok.txt": b"ok", str(outside): b"evil"})
    remote = RemoteFile(server.add("arc.tar.gz", archive), "arc.tar.gz", sha(archive), extract=True)
    fetch(remote, tmp_path / "root", sleeps)
    assert not outside.exists()
    assert (tmp_path / "root" / "arc" / str(outside).lstrip("/")).read_bytes() == b"evil"


@pytest.mark.parametrize(
    ("name", "archive", "member"),
    [
        ("arc.tar.gz", make_tar_gz({"ok.txt": b"ok", "../evil": b"evil"}), "../evil"),
        ("arc.zip", make_zip({"ok.txt": b"ok", "../evil": b"evil"}), "../evil"),
        ("arc.tar", make_tar_with_symlink("link", "/etc/passwd"), "link"),
        ("arc.tar", make_tar_with_symlink("sub/link", "../../evil"), "sub/link"),
    ],
)
def test_unsafe_archive_is_rejected_and_nothing_extracted(
    server: FixtureServer,
    tmp_path: Path,
    sleeps: list[float],
    name: str,
    archive: bytes,
    member: str,
) -> None:
    root = tmp_path / "root"
    remote = RemoteFile(server.add(name, archive), f"ds/{name}", sha(archive), extract=True)
    with pytest.raises(DownloadError) as info:
        fetch(remote, root, sleeps)

    assert str(root / "ds" / name) in str(info.value) and repr(member) in str(info.value)
    assert sorted(p.name for p in (root / "ds").iterdir()) == [name]  # no target, no staging
    assert not (root / "evil").exists() and not (tmp_path / "evil").exists()
