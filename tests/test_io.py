"""Atomic writes: complete or absent, never half-written, and readable like a plain open() would make them."""

import os
import stat

import pytest

from flux.io import FILE_MODE, atomic_path, atomic_write_text


def test_atomic_write_gives_umask_permissions(tmp_path):
    path = tmp_path / "sub" / "result.txt"
    atomic_write_text(path, "done\n")
    assert path.read_text() == "done\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == FILE_MODE
    assert FILE_MODE & 0o044  # group and others can read with the usual umask (not mkstemp's 0600)


def test_failed_block_leaves_nothing(tmp_path):
    path = tmp_path / "result.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as temporary:
            temporary.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]
