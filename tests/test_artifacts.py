"""`flux pull` on a real DVC repository with a local directory remote: a corrupted remote copy or an unreachable
remote is an error naming the file or the remote, and nothing is checked out."""

import subprocess
import sys

import pytest

from flux.artifacts import run
from flux.errors import FluxError


def sh(cwd, *command):
    subprocess.run(list(command), cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def published(tmp_path):
    repo, store = tmp_path / "repo", tmp_path / "store"
    (repo / "data" / "sub").mkdir(parents=True)
    (repo / "data" / "sub" / "clip.bin").write_bytes(bytes(range(256)) * 64)
    (repo / "data" / "notes.txt").write_text("hello\n")
    sh(repo, "git", "init", "-q")
    dvc = [sys.executable, "-m", "dvc"]
    sh(repo, *dvc, "init", "-q")
    sh(repo, *dvc, "remote", "add", "-d", "store", str(store))
    sh(repo, *dvc, "remote", "modify", "store", "verify", "true")
    sh(repo, *dvc, "add", "-q", "data")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "data")
    sh(repo, *dvc, "push", "-q")
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    return clone, store


def test_pull_restores_the_data(published):
    clone, _ = published
    run({"repo": str(clone)})
    assert (clone / "data" / "notes.txt").read_text() == "hello\n"


def test_a_corrupted_remote_copy_is_named(published):
    clone, store = published
    objects = [path for path in (store / "files" / "md5").rglob("*") if path.is_file() and not path.name.endswith(".dir")]
    victim = max(objects, key=lambda path: path.stat().st_size)  # the binary clip
    victim.chmod(0o644)
    victim.write_bytes(b"flipped bits")
    with pytest.raises(FluxError, match=r"data/sub/clip.bin: the remote copy .* is corrupted"):
        run({"repo": str(clone)})
    assert not (clone / "data").exists()


def test_an_unreachable_remote_is_named(published):
    clone, store = published
    store.rename(store.with_name("moved"))
    with pytest.raises(FluxError, match=f"the DVC remote {store} is unreachable"):
        run({"repo": str(clone)})
    assert not (clone / "data").exists()


def test_a_missing_remote_object_is_named(published):
    clone, store = published
    objects = [path for path in (store / "files" / "md5").rglob("*") if path.is_file() and not path.name.endswith(".dir")]
    min(objects, key=lambda path: path.stat().st_size).unlink()  # the notes
    with pytest.raises(FluxError, match=rf"data/notes.txt: missing from the remote {store} \(md5 "):
        run({"repo": str(clone)})
    assert not (clone / "data").exists()
