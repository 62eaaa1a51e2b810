"""Writing files so that nothing a user wrote is lost: atomic replacement, no silent overwrite.

`check_output_file` and `check_output_folder` say before any work starts whether an output can be written;
`write_atomically` writes one file and `write_folder_atomically` a folder of files (a bundle), each all or
nothing. Errors are `OSError` subclasses whose message names the path and the fix: `FileExistsError` (the
output exists), `FileNotFoundError` (its folder does not exist), `NotADirectoryError` (a file stands where a
folder must be), `IsADirectoryError` (a folder stands where the file must be), `PermissionError`, and
`OSError` with `errno.ENAMETOOLONG`.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import pathlib
import re
import secrets
import shutil
import socket
import stat
from collections.abc import Iterable

MANIFEST = "keras_sparse_manifest.json"
"""The file in a folder written by `write_folder_atomically` that lists its files and their SHA-256."""

_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_SCRATCH = re.compile(r"\.keras-sparse-([0-9a-f]{6})-(\d+)-[0-9a-f]{8}(\.tmp)?")
"""Names of this module's scratch files and folders: the writing machine and process, and a random token."""


def check_output_file(path, overwrite: bool = False, argument: str = "path") -> pathlib.Path:
    """Raises (an OSError naming `argument`) unless a file can be written at `path`; returns it as a Path.

    Example:

    >>> import pathlib, tempfile
    >>> check_output_file(pathlib.Path(tempfile.mkdtemp()) / "m.tflite").name
    'm.tflite'
    """
    path = _as_path(path, argument)
    _check_parent(path, argument)
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"Cannot write `{argument}` {path}: it is a folder. Give the path of the file to write inside it."
        )
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(
            f"`{argument}` {path} exists. Pass overwrite=True (or --overwrite) to replace it, or choose another path."
        )
    return path


def read_input_file(path, argument: str = "path", what: str = "file") -> bytes:
    """The bytes of an existing file at `path`; a FileNotFoundError or IsADirectoryError naming `argument` and
    `what` it should be otherwise.

    Example:

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.tflite"
    >>> _ = path.write_bytes(b"TFL3")
    >>> read_input_file(path)
    b'TFL3'
    """
    path = _as_path(path, argument)
    if os.path.isdir(path):
        raise IsADirectoryError(f"`{argument}` {path} is a folder. Give the path of the {what} inside it.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`{argument}` {path} does not exist. Give the path of a {what}.")
    return path.read_bytes()


def write_atomically(path, data: bytes, overwrite: bool = False) -> pathlib.Path:
    """Writes `data` to a temporary file beside `path`, then renames it to `path`.

    Readers see the old file or the new one, never a part. The file gets the permissions `open()` would
    give it: those of the file it replaces, or 0666 less the umask. A file, or a symbolic link, dangling or
    not, at `path` is replaced only if `overwrite` (the link itself is replaced, not its target).

    Raises:
        The errors of `check_output_file`; nothing is left behind when writing fails.

    Example:

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_atomically(folder / "a.bin", b"1").read_bytes()
    b'1'
    """
    path = check_output_file(path, overwrite)
    _remove_stale_scratch(path.parent)
    mode = stat.S_IMODE(os.stat(path).st_mode) if os.path.isfile(path) and not os.path.islink(path) else None
    scratch = _write_scratch_file(path.parent, data, mode)
    try:
        if overwrite:
            os.replace(scratch, path)
        else:
            _link_without_replacing(scratch, path)
    except BaseException:
        _unlink_quietly(scratch)
        raise
    _fsync_folder(path.parent)
    return path


def check_output_folder(
    folder, overwrite: bool = False, argument: str = "folder", file_names: Iterable[str] = ()
) -> pathlib.Path:
    """Raises (an OSError naming `argument`) unless `write_folder_atomically` may write `file_names` as `folder`.

    It may if the folder does not exist (its parent must), is empty, or, with `overwrite`, holds exactly
    what an earlier `write_folder_atomically` wrote there (its manifest's files, unchanged). Any other file
    in it, whatever its name, belongs to someone else: the folder is then refused, even with `overwrite`.
    """
    folder = _as_path(folder, argument)
    _check_parent(folder, argument)
    for name in file_names:
        _check_name_length(folder / name, argument)
    if not os.path.lexists(folder):
        return folder
    if folder.is_symlink():
        raise NotADirectoryError(
            f"Cannot write `{argument}` {folder}: it is a symbolic link. Give the folder it points to, or another."
        )
    if not folder.is_dir():
        raise NotADirectoryError(
            f"Cannot write `{argument}` {folder}: it is a file, not a folder. Choose a folder path (it is created)."
        )
    entries = sorted(os.listdir(folder))
    if not entries:
        return folder
    foreign = _not_written_by_us(folder, entries)
    if foreign:
        raise FileExistsError(
            f"Cannot write `{argument}` {folder}: it holds files this library did not write, or changed since "
            f"({', '.join(foreign)}). They are never replaced: write into a new or empty folder, or move them."
        )
    if not overwrite:
        raise FileExistsError(
            f"`{argument}` {folder} holds an earlier bundle ({', '.join(entries)}). Pass overwrite=True (or "
            "--overwrite) to replace it, or choose another folder."
        )
    return folder


def write_folder_atomically(folder, files: dict[str, bytes], overwrite: bool = False) -> pathlib.Path:
    """Writes `files` (name -> bytes) as the folder `folder`, all or nothing, with a manifest of them.

    The files are written into a scratch folder beside `folder` and read back; then the scratch folder
    takes `folder`'s place in one step (Linux `renameat2(RENAME_EXCHANGE)`; elsewhere three renames, and
    a process dying between them leaves the old folder as `.keras-sparse-previous-*` beside it). Readers
    see the old bundle or the new one, never a mix. `MANIFEST` lists the files with their SHA-256, so that
    a later call recognises the folder as its own (see `check_output_folder`). A process killed while
    writing leaves a `.keras-sparse-*` scratch folder, which the next call writing beside it removes.

    Raises:
        The errors of `check_output_folder`; ValueError for a file name that is not a plain name.
    """
    for name in files:
        if name == MANIFEST or os.path.basename(name) != name or name in ("", ".", ".."):
            raise ValueError(f"Received an invalid file name {name!r} for a bundle: expected a plain file name.")
    folder = check_output_folder(folder, overwrite, file_names=files)
    _remove_stale_scratch(folder.parent)
    manifest = {"written_by": "keras-sparse", "files": {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}}
    contents = {**files, MANIFEST: (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()}
    scratch = folder.parent / _scratch_name()
    os.mkdir(scratch)  # 0777 less the umask, as mkdir(1)
    try:
        for name, data in contents.items():
            _write_new_file(scratch / name, data)
        for name, data in contents.items():
            if (scratch / name).read_bytes() != data:
                raise OSError(errno.EIO, f"{scratch / name} did not read back as written; nothing was replaced.")
        _fsync_folder(scratch)
        check_output_folder(folder, overwrite)  # again: someone may have written there meanwhile
        if os.path.lexists(folder):
            _exchange(scratch, folder)  # the old bundle is now at `scratch`
        else:
            os.rename(scratch, folder)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    shutil.rmtree(scratch, ignore_errors=True)
    _fsync_folder(folder.parent)
    return folder


def _as_path(path, argument: str) -> pathlib.Path:
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise TypeError(
            f"Received an invalid value for argument `{argument}`, expected a path (str or os.PathLike). "
            f"Received: {argument}={path!r}"
        )
    return pathlib.Path(os.fspath(path))


def _check_parent(path: pathlib.Path, argument: str) -> None:
    parent = path.parent
    if not os.path.isdir(parent):
        ancestor = parent
        while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if os.path.lexists(ancestor) and not os.path.isdir(ancestor):
            raise NotADirectoryError(
                f"Cannot write `{argument}` {path}: {ancestor} is a file, not a folder. Choose another path."
            )
        raise FileNotFoundError(
            f"Cannot write `{argument}` {path}: its folder {parent} does not exist. Create it first."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"Cannot write `{argument}` {path}: no permission to write in {parent}.")
    _check_name_length(path, argument)


def _check_name_length(path: pathlib.Path, argument: str) -> None:
    try:
        limit = os.pathconf(path.parent if path.parent.is_dir() else path.parent.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(os.fsencode(path.name)) > limit:
        raise OSError(
            errno.ENAMETOOLONG,
            f"Cannot write `{argument}` {path}: its name is {len(os.fsencode(path.name))} bytes long, and the "
            f"file system allows {limit}. Choose a shorter name.",
        )


def _scratch_name(suffix: str = "") -> str:
    return f".keras-sparse-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}{suffix}"


def _write_scratch_file(folder: pathlib.Path, data: bytes, mode: int | None) -> pathlib.Path:
    while True:
        scratch = folder / _scratch_name(".tmp")
        try:
            _write_new_file(scratch, data, mode)
            return scratch
        except FileExistsError:
            continue


def _write_new_file(path: pathlib.Path, data: bytes, mode: int | None = None) -> None:
    """Creates `path` (never an existing one) with `data`, as open() would (0666 less the umask), and syncs it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        _unlink_quietly(path)
        raise


def _link_without_replacing(scratch: pathlib.Path, path: pathlib.Path) -> None:
    """Gives `scratch` the name `path` unless something exists there (checked atomically where links work)."""
    try:
        os.link(scratch, path, follow_symlinks=False)
    except FileExistsError:
        raise FileExistsError(
            f"`path` {path} appeared while writing. Pass overwrite=True (or --overwrite) to replace it."
        ) from None
    except OSError as error:  # file systems without hard links: check, then rename
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV):
            raise
        if os.path.lexists(path):
            raise FileExistsError(f"`path` {path} appeared while writing. Pass overwrite=True to replace it.") from None
        os.rename(scratch, path)
        return
    _unlink_quietly(scratch)


def _exchange(new: pathlib.Path, old: pathlib.Path) -> None:
    """Swaps two folders' names: in one step on Linux, else by two renames."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        renameat2 = None
    if renameat2 is not None:
        at_current_folder, rename_exchange = -100, 2
        if renameat2(at_current_folder, os.fsencode(new), at_current_folder, os.fsencode(old), rename_exchange) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, f"Cannot replace {old}: {os.strerror(code)}", str(old))
    kept = old.parent / f".keras-sparse-previous-{secrets.token_hex(4)}"  # not scratch: never removed unasked
    os.rename(old, kept)
    os.rename(new, old)
    os.rename(kept, new)


def _not_written_by_us(folder: pathlib.Path, entries: list[str]) -> list[str]:
    """The entries of `folder` that its manifest does not list with their current content."""
    try:
        listed = json.loads((folder / MANIFEST).read_text())["files"]
        assert isinstance(listed, dict)
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        return entries
    foreign = []
    for name in entries:
        if name == MANIFEST:
            continue
        entry = folder / name
        if name not in listed or entry.is_symlink() or not entry.is_file():
            foreign.append(name)
        elif hashlib.sha256(entry.read_bytes()).hexdigest() != listed[name]:
            foreign.append(name)
    return foreign


def _remove_stale_scratch(folder: pathlib.Path) -> None:
    """Removes scratch files and folders left in `folder` by processes of this machine that died writing."""
    for name in os.listdir(folder):
        match = _SCRATCH.fullmatch(name)
        if match is None or match.group(1) != _HOST or _process_alive(int(match.group(2))):
            continue
        entry = folder / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        elif match.group(3):
            _unlink_quietly(entry)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def _fsync_folder(folder: pathlib.Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _unlink_quietly(path: pathlib.Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
