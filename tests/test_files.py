"""keras_sparse.files: writes are atomic, honour the umask, never replace what they were not asked to, and say why
they cannot write before any work starts; folders (bundles) are written all or nothing."""

import errno
import json
import os
import pathlib
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from keras_sparse import files
from keras_sparse.files import (
    MANIFEST,
    check_output_file,
    check_output_folder,
    write_atomically,
    write_folder_atomically,
)


@pytest.fixture
def umask():
    """Sets the process umask for one test, then restores it."""
    saved = os.umask(0o022)
    yield os.umask
    os.umask(saved)


def test_write_atomically_writes_and_refuses_to_overwrite(tmp_path):
    path = write_atomically(tmp_path / "a.bin", b"1")
    assert path.read_bytes() == b"1"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_atomically(path, b"2")
    assert write_atomically(path, b"2", overwrite=True).read_bytes() == b"2"
    assert os.listdir(tmp_path) == ["a.bin"]


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_mode_open_would_give_them(tmp_path, umask, mask, mode):
    umask(mask)
    path = write_atomically(tmp_path / "a.bin", b"1")
    with open(tmp_path / "b.bin", "wb"):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == mode == stat.S_IMODE((tmp_path / "b.bin").stat().st_mode)


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    path.chmod(0o640)
    write_atomically(path, b"new", overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_bytes() == b"new"


def test_a_dangling_symlink_is_not_replaced_without_overwrite(tmp_path):
    link = tmp_path / "a.bin"
    link.symlink_to(tmp_path / "missing-target")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_atomically(link, b"1")
    assert link.is_symlink() and not (tmp_path / "missing-target").exists()
    write_atomically(link, b"1", overwrite=True)  # replaces the link itself, not its target
    assert not link.is_symlink() and link.read_bytes() == b"1" and not (tmp_path / "missing-target").exists()


def test_the_longest_file_names_work(tmp_path):
    name = "m" * 248 + ".tflite"  # 255 bytes: the usual limit
    assert write_atomically(tmp_path / name, b"1").read_bytes() == b"1"
    with pytest.raises(OSError, match="255") as error:
        check_output_file(tmp_path / ("m" * 256))
    assert error.value.errno == errno.ENAMETOOLONG


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda tmp: tmp / "missing" / "a.bin", FileNotFoundError, "does not exist"),
        (lambda tmp: (tmp / "file").write_bytes(b"") or tmp / "file" / "a.bin", NotADirectoryError, "is a file"),
        (lambda tmp: (tmp / "file").write_bytes(b"") or tmp / "file" / "x" / "a.bin", NotADirectoryError, "is a file"),
        (lambda tmp: (tmp / "dir").mkdir() or tmp / "dir", IsADirectoryError, "is a folder"),
    ],
)
def test_unwritable_paths_are_named_before_any_work(tmp_path, make, error, words):
    path = make(tmp_path)
    with pytest.raises(error, match=words):
        check_output_file(path)
    with pytest.raises(error, match=words):
        write_atomically(path, b"1", overwrite=True)


def test_a_folder_without_write_permission_is_named(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    real_access = os.access
    # Root may write anywhere: answer as the kernel answers an ordinary user for a 0o500 folder.
    monkeypatch.setattr(
        os, "access", lambda path, mode: False if pathlib.Path(path) == locked else real_access(path, mode)
    )
    with pytest.raises(PermissionError, match="no permission"):
        check_output_file(locked / "a.bin")


def test_a_failed_rename_leaves_no_temporary_file(tmp_path, monkeypatch):
    def failing(*args, **kwargs):
        raise OSError(errno.EIO, "disk failed")

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="disk failed"):
        write_atomically(tmp_path / "a.bin", b"1", overwrite=True)
    monkeypatch.setattr(os, "link", failing)
    with pytest.raises(OSError, match="disk failed"):
        write_atomically(tmp_path / "a.bin", b"1")
    assert os.listdir(tmp_path) == []


def test_a_file_appearing_while_writing_is_not_replaced(tmp_path, monkeypatch):
    path = tmp_path / "a.bin"
    write_scratch = files._write_scratch_file

    def racing(*args, **kwargs):
        scratch = write_scratch(*args, **kwargs)
        path.write_bytes(b"theirs")
        return scratch

    monkeypatch.setattr(files, "_write_scratch_file", racing)
    with pytest.raises(FileExistsError, match="appeared"):
        write_atomically(path, b"ours")
    assert path.read_bytes() == b"theirs" and os.listdir(tmp_path) == ["a.bin"]


BUNDLE = {"m_int8.tflite": b"model", "m_model_data.h": b"header"}


def test_a_folder_is_written_with_its_manifest(tmp_path, umask):
    umask(0o022)
    folder = write_folder_atomically(tmp_path / "bundle", BUNDLE)
    assert sorted(os.listdir(folder)) == sorted([*BUNDLE, MANIFEST])
    assert json.loads((folder / MANIFEST).read_text())["files"].keys() == BUNDLE.keys()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert stat.S_IMODE((folder / "m_int8.tflite").stat().st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["bundle"]


def test_an_earlier_bundle_is_replaced_only_with_overwrite_and_entirely(tmp_path):
    folder = write_folder_atomically(tmp_path / "bundle", BUNDLE)
    with pytest.raises(FileExistsError, match="earlier bundle.*overwrite=True"):
        write_folder_atomically(folder, {"n.h": b"new"})
    assert (folder / "m_int8.tflite").read_bytes() == b"model"
    write_folder_atomically(folder, {"n.h": b"new"}, overwrite=True)
    assert sorted(os.listdir(folder)) == sorted(["n.h", MANIFEST])
    assert sorted(os.listdir(tmp_path)) == ["bundle"]


def test_an_empty_folder_may_be_written(tmp_path):
    (tmp_path / "bundle").mkdir()
    assert sorted(os.listdir(write_folder_atomically(tmp_path / "bundle", BUNDLE))) == sorted([*BUNDLE, MANIFEST])


@pytest.mark.parametrize("name", ["main.cc", "m_int8.tflite", ".hidden", "keras_sparse_manifest.json"])
def test_a_users_own_file_is_never_touched_whatever_its_name(tmp_path, name):
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / name).write_bytes(b"mine")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="did not write.*never replaced"):
            write_folder_atomically(folder, BUNDLE, overwrite=overwrite)
    assert os.listdir(folder) == [name] and (folder / name).read_bytes() == b"mine"
    assert sorted(os.listdir(tmp_path)) == ["bundle"]


def test_a_bundle_file_changed_by_its_user_is_theirs(tmp_path):
    folder = write_folder_atomically(tmp_path / "bundle", BUNDLE)
    (folder / "m_model_data.h").write_bytes(b"edited by hand")
    with pytest.raises(FileExistsError, match="m_model_data.h"):
        write_folder_atomically(folder, BUNDLE, overwrite=True)
    assert (folder / "m_model_data.h").read_bytes() == b"edited by hand"


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda tmp: tmp / "missing" / "bundle", FileNotFoundError),
        (lambda tmp: (tmp / "file").write_bytes(b"") or tmp / "file", NotADirectoryError),
        (
            lambda tmp: (tmp / "real").mkdir() or (tmp / "link").symlink_to(tmp / "real") or tmp / "link",
            NotADirectoryError,
        ),
    ],
)
def test_unwritable_folders_are_named(tmp_path, make, error):
    with pytest.raises(error, match="Cannot write `folder`"):
        check_output_folder(make(tmp_path), overwrite=True)


def test_a_failure_while_writing_keeps_the_old_bundle_and_no_scratch(tmp_path, monkeypatch):
    folder = write_folder_atomically(tmp_path / "bundle", BUNDLE)
    written = []
    write_new_file = files._write_new_file

    def failing_on_the_second(path, data, mode=None):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        write_new_file(path, data, mode)

    monkeypatch.setattr(files, "_write_new_file", failing_on_the_second)
    with pytest.raises(OSError, match="No space"):
        write_folder_atomically(folder, {"a": b"1", "b": b"2"}, overwrite=True)
    assert (
        sorted(os.listdir(folder)) == sorted([*BUNDLE, MANIFEST])
        and (folder / "m_int8.tflite").read_bytes() == b"model"
    )
    assert sorted(os.listdir(tmp_path)) == ["bundle"]


def test_without_an_atomic_exchange_the_swap_still_completes(tmp_path, monkeypatch):
    """Where renameat2 is missing (not Linux, old C libraries), the folders are swapped by renames."""
    folder = write_folder_atomically(tmp_path / "bundle", BUNDLE)
    monkeypatch.setattr(files.ctypes, "CDLL", lambda *args, **kwargs: object())
    write_folder_atomically(folder, {"n.h": b"new"}, overwrite=True)
    assert sorted(os.listdir(folder)) == sorted(["n.h", MANIFEST]) and sorted(os.listdir(tmp_path)) == ["bundle"]


KILLED_WHILE_WRITING = textwrap.dedent(
    """
    import importlib.util, os, signal, sys
    spec = importlib.util.spec_from_file_location("files", sys.argv[2])  # the module alone: no TensorFlow to load
    files = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(files)
    write_new_file = files._write_new_file
    def dying(path, data, mode=None):
        if path.name == "b":
            os.kill(os.getpid(), signal.SIGKILL)
        write_new_file(path, data, mode)
    files._write_new_file = dying
    files.write_folder_atomically(sys.argv[1], {"a": b"1", "b": b"2", "c": b"3"}, overwrite=True)
    """
)


def test_a_process_killed_while_writing_leaves_the_old_bundle_and_its_scratch_is_removed_next_time(tmp_path):
    folder = write_folder_atomically(tmp_path / "bundle", BUNDLE)
    command = [sys.executable, "-c", KILLED_WHILE_WRITING, str(folder), files.__file__]
    killed = subprocess.run(command, capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    assert (
        sorted(os.listdir(folder)) == sorted([*BUNDLE, MANIFEST])
        and (folder / "m_int8.tflite").read_bytes() == b"model"
    )
    scratch = [name for name in os.listdir(tmp_path) if name != "bundle"]
    assert len(scratch) == 1 and scratch[0].startswith(".keras-sparse-")  # the dead process's half-written folder
    write_folder_atomically(tmp_path / "other", {"x": b"1"})
    assert sorted(os.listdir(tmp_path)) == ["bundle", "other"]


def test_scratch_of_a_live_process_is_left_alone(tmp_path):
    live = tmp_path / f".keras-sparse-{files._HOST}-1-0123abcd"  # pid 1 is always alive
    live.mkdir()
    write_folder_atomically(tmp_path / "bundle", BUNDLE)
    assert live.exists()
