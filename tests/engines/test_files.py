"""engines.files: a file is written whole or not at all, and reads like any other file once written."""

import os

import pytest

from engines.files import atomic_path, atomic_write


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_write_writes_bytes_or_text_whole_with_the_usual_permissions(tmp_path):
    atomic_write(tmp_path / "sub" / "a.bin", b"\x00\x01")
    atomic_write(tmp_path / "b.json", '{"x": "é"}')
    assert (tmp_path / "sub" / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.json").read_text(encoding="utf-8") == '{"x": "é"}'
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json", "sub"]  # no temporary file left


def test_a_private_file_is_never_readable_by_others(tmp_path):
    atomic_write(tmp_path / "key", "secret", mode=0o600, sync=True)
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary_one(tmp_path):
    target = tmp_path / "cache.npz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("stopped mid-write")
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


def test_the_temporary_path_keeps_the_suffix_for_writers_that_choose_a_format_by_it(tmp_path):
    with atomic_path(tmp_path / "figure.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path and tmp.name.startswith(".")
        tmp.write_bytes(b"png")
    assert (tmp_path / "figure.png").read_bytes() == b"png"
