"""Follow a growing file across rotation and truncation, by explicit read positions.

`Tail.read()` returns the complete lines written since the last position and the position
after them, without moving anything; `Tail.advance(position)` accepts it. So a poll that is
cancelled or whose samples fail to store reads the same lines again, and a position saved
in the store next to the samples lets a restart neither re-read nor skip.

A position is the file's identity (device, inode), a byte offset at a line start and a
fingerprint of the file's first bytes (up to 4 KiB, no further than the offset). Rotation
(the path now names another file) is followed by reading the rest of the old file first (by
the open descriptor, or found by inode beside the path after a restart), then the new file
from its start. A file that was truncated (copytruncate) is read from its start: one shorter
than the offset, and one that has grown past the offset again between two polls, which its
first bytes tell (they are other lines now).

The path must name a regular file. A symbolic link there is refused (`SymlinkRefused`)
unless the caller follows links (`follow_symlinks`): whoever can write the log's directory
must not be able to make alertd read another file (say /etc/shadow) as a "rotation".
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass

HEAD = 4096  # bytes of the file's start that identify its contents


class SymlinkRefused(OSError):
    """The path is a symbolic link (or not a regular file) and links are not followed."""


@dataclass(frozen=True)
class Position:
    """Where reading goes on: the file's (device, inode), a byte offset, and a fingerprint
    (`head`) of the first `head_len` bytes of the file when that offset was reached."""

    dev: int
    ino: int
    offset: int
    head: str = ""
    head_len: int = 0

    def as_dict(self) -> dict:
        return {"dev": self.dev, "ino": self.ino, "offset": self.offset, "head": self.head,
                "head_len": self.head_len}

    @classmethod
    def from_dict(cls, data) -> "Position | None":
        try:
            return cls(int(data["dev"]), int(data["ino"]), int(data["offset"]), str(data.get("head", "")),
                       int(data.get("head_len", 0)))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


@dataclass
class Chunk:
    """What one `read` found: whole lines (bytes), the next position, and what happened."""

    data: list[bytes]
    position: Position
    events: list[str]  # "rotated", "truncated", "lost" (old file of a rotation not found)

    @property
    def size(self) -> int:
        return sum(len(d) for d in self.data)


class Tail:
    """Reads new lines of `path`; see the module docstring. Not thread-safe: one reader."""

    def __init__(self, path: str, start_at: str = "end", max_read: int = 64 << 20, *,
                 follow_symlinks: bool = False):
        self.path = str(path)
        self.start_at = start_at
        self.max_read = max_read
        self.follow_symlinks = follow_symlinks
        self.position: Position | None = None
        self._fds: dict[tuple[int, int], int] = {}

    def read(self) -> Chunk:
        """The complete lines after `position` (at most about `max_read` bytes)."""
        events: list[str] = []
        data: list[bytes] = []
        current, fd = self._open_path()
        if self.position is None:  # the first look fixes where reading starts (reads nothing yet)
            self.position = self._mark(current, fd, self._size(fd) if self.start_at == "end" else 0)
        pos = self.position
        if (pos.dev, pos.ino) != current:
            old = self._find((pos.dev, pos.ino))
            if old is None:
                events.append("lost")
            else:
                block, consumed, complete = self._read_lines(old, pos.offset, final=True)
                data.append(block)
                if not complete:  # more of the old file than one read takes: go on next time
                    return Chunk(data, self._mark((pos.dev, pos.ino), old, pos.offset + consumed), events)
            events.append("rotated")
            pos = Position(*current, 0)
        if self._size(fd) < pos.offset or self._rewritten(fd, pos):
            events.append("truncated")
            pos = Position(pos.dev, pos.ino, 0)
        block, consumed, _ = self._read_lines(fd, pos.offset, final=False)
        data.append(block)
        return Chunk(data, self._mark(current, fd, pos.offset + consumed), events)

    def advance(self, position: Position) -> None:
        """Accept a position returned by `read` (its lines were used); close old files."""
        self.position = position
        for ident in [i for i in self._fds if i != (position.dev, position.ino)]:
            os.close(self._fds.pop(ident))

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    # -- files -----------------------------------------------------------------------------
    def _open(self, path: str) -> int:
        """A descriptor of the regular file at `path`; SymlinkRefused for a link (unless links
        are followed) or anything that is not a regular file (a FIFO would block the reader)."""
        flags = os.O_RDONLY | os.O_NONBLOCK | (0 if self.follow_symlinks else os.O_NOFOLLOW)
        try:
            fd = os.open(path, flags)  # FileNotFoundError / PermissionError: the caller's
        except OSError as exc:
            if not self.follow_symlinks and os.path.islink(path):
                raise SymlinkRefused(f"the log file path {path} is a symbolic link (to "
                                     f"{os.readlink(path)}); alertd does not follow links unless the source "
                                     "sets follow_symlinks: true") from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise SymlinkRefused(f"{path} is not a regular file; point path at the log file itself")
        return fd

    def _open_path(self) -> tuple[tuple[int, int], int]:
        """(identity, descriptor) of the file the path names now (opened once, then kept)."""
        fd = self._open(self.path)
        st = os.fstat(fd)
        ident = (st.st_dev, st.st_ino)
        if ident in self._fds:
            os.close(fd)
            return ident, self._fds[ident]
        self._fds[ident] = fd
        return ident, fd

    @staticmethod
    def _fingerprint(fd: int, length: int) -> str:
        return hashlib.blake2b(os.pread(fd, length, 0), digest_size=12).hexdigest() if length else ""

    def _mark(self, ident: tuple[int, int], fd: int, offset: int) -> Position:
        """The position `offset` in the file `ident`, with the fingerprint of its start."""
        length = min(offset, HEAD)
        return Position(*ident, offset, self._fingerprint(fd, length), length)

    def _rewritten(self, fd: int, pos: Position) -> bool:
        """Whether the file's first bytes are no longer those read before: copytruncate, then
        new lines past the old offset before this poll (the size alone cannot tell)."""
        return bool(pos.head_len) and self._fingerprint(fd, pos.head_len) != pos.head

    def _find(self, ident: tuple[int, int]) -> int | None:
        """A descriptor of the file with this identity: still open, or renamed beside the path."""
        if ident in self._fds:
            return self._fds[ident]
        look = os.stat if self.follow_symlinks else os.lstat  # a link beside it is not the old file
        for path in self._siblings():
            try:
                st = look(path)
                if (st.st_dev, st.st_ino) == ident:
                    fd = self._open(path)
                    self._fds[ident] = fd
                    return fd
            except OSError:
                continue
        return None

    def _siblings(self) -> list[str]:
        """Files beside the path whose names start with its name (access.log.1, ...)."""
        directory, base = os.path.split(os.path.abspath(self.path))
        try:
            names = sorted(n for n in os.listdir(directory) if n.startswith(base) and n != base)
        except OSError:
            return []
        return [os.path.join(directory, n) for n in names if not n.endswith((".gz", ".xz", ".bz2", ".zst"))]

    @staticmethod
    def _size(fd: int) -> int:
        return os.fstat(fd).st_size

    def _read_lines(self, fd: int, offset: int, final: bool) -> tuple[bytes, int, bool]:
        """(whole lines from offset, bytes consumed, reached the end). With `final`, a last
        line without a newline counts as whole (the file will not grow any more)."""
        size = self._size(fd)
        want = min(self.max_read, max(size - offset, 0))
        block = os.pread(fd, want, offset) if want else b""
        at_end = offset + len(block) >= size
        if final and at_end:
            return block, len(block), True
        cut = block.rfind(b"\n") + 1
        if cut == 0 and len(block) >= self.max_read:  # one line longer than max_read: take it
            cut = len(block)
        return block[:cut], cut, at_end and cut == len(block)
