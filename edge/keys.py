"""CURVE key pairs for the result stream: made by `mestream keys`, read by edge/security.py.

Files use the ZeroMQ certificate format that czmq and pyzmq's `zmq.auth` read: NAME.key holds the public
key (give it to the other side), NAME.key_secret holds both keys (keep it on this machine). Both are written
0600 through a temporary file and a rename, so a key file is never seen half-written or world-readable.

    files = write_keypair(Path("/etc/mestream/keys"), "server")
    public, secret = read_keypair(files.secret)
"""

from __future__ import annotations

import datetime
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from engines.errors import MestreamError
from engines.files import atomic_write

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
Z85_KEY_LENGTH = 40  # a 32-byte Curve25519 key in Z85 text

_PUBLIC_BANNER = (
    "#   ZeroMQ CURVE Public Certificate, made by mestream keys on {when}\n"
    "#   Give this file to the other side of the connection.\n"
)
_SECRET_BANNER = (
    "#   ZeroMQ CURVE **Secret** Certificate, made by mestream keys on {when}\n"
    "#   Keep this file on this machine, readable by its owner only (0600).\n"
)


@dataclass(frozen=True)
class KeyFiles:
    public: Path  # NAME.key
    secret: Path  # NAME.key_secret


def key_files(out_dir: Path, name: str) -> KeyFiles:
    return KeyFiles(out_dir / f"{name}.key", out_dir / f"{name}.key_secret")


def _certificate(banner: str, public: bytes, secret: bytes | None) -> str:
    text = banner.format(when=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    text += "metadata\ncurve\n"
    text += f'    public-key = "{public.decode("ascii")}"\n'
    if secret is not None:
        text += f'    secret-key = "{secret.decode("ascii")}"\n'
    return text


def _write_private(path: Path, text: str) -> None:
    """Write text to path as 0600 from the first byte (the temporary file is private too), flushed to disk."""
    atomic_write(path, text.encode("ascii"), mode=0o600, sync=True)


def write_keypair(out_dir: Path, name: str, *, force: bool = False) -> KeyFiles:
    """Make a new CURVE key pair as out_dir/NAME.key and out_dir/NAME.key_secret (both 0600)."""
    import zmq

    if not NAME_PATTERN.fullmatch(name):
        raise MestreamError(
            f"key name {name!r}: expected letters, digits, '.', '_' or '-' (up to 64, no '/'), e.g. server or laptop"
        )
    if not zmq.has("curve"):
        raise MestreamError(
            f"libzmq {zmq.zmq_version()} has no CURVE support; reinstall pyzmq from PyPI (its wheels bundle libsodium)"
        )
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise MestreamError(f"--out {out_dir}: is a file; give a directory for the key files")
    files = key_files(out_dir, name)
    if not force:
        for path in (files.public, files.secret):
            if path.exists():
                raise MestreamError(
                    f"{path} already exists; pass --force to replace it (subscribers holding the old key will be refused)"
                )
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    public, secret = zmq.curve_keypair()
    # Secret first: a crash in between leaves a usable secret and no orphan public key pointing at nothing.
    _write_private(files.secret, _certificate(_SECRET_BANNER, public, secret))
    _write_private(files.public, _certificate(_PUBLIC_BANNER, public, None))
    return files


def _read_keys(path: Path, what: str) -> tuple[bytes, bytes | None]:
    from zmq.auth import load_certificate

    path = Path(path)
    if not path.is_file():
        raise MestreamError(f"{what} {path}: no such file; make one with `mestream keys --out DIR --name NAME`")
    try:
        public, secret = load_certificate(path)
    except ValueError:
        raise MestreamError(f"{what} {path}: no public-key line; expected a file written by `mestream keys`") from None
    for key in (public, secret):
        if key is not None and len(key) != Z85_KEY_LENGTH:
            raise MestreamError(f"{what} {path}: a key of {len(key)} characters; expected {Z85_KEY_LENGTH} (Z85)")
    return public, secret


def read_public_key(path: Path) -> bytes:
    public, _ = _read_keys(path, "public key file")
    return public


def read_keypair(path: Path) -> tuple[bytes, bytes]:
    """(public, secret) from a NAME.key_secret file; refused when others can read it, as ssh does."""
    public, secret = _read_keys(path, "secret key file")
    if secret is None:
        raise MestreamError(f"secret key file {path}: holds only a public key; give the NAME.key_secret file")
    mode = stat.S_IMODE(Path(path).stat().st_mode)
    if mode & 0o077:
        raise MestreamError(f"secret key file {path}: mode {mode:04o} lets others read it; run chmod 600 {path}")
    return public, secret


def read_allowed_clients(directory: Path) -> list[bytes]:
    """The public keys (*.key) in an allow-list directory; an empty list is refused: nobody could connect."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MestreamError(
            f"client key directory {directory}: no such directory; create it and copy each subscriber's NAME.key into it"
        )
    keys = [read_public_key(p) for p in sorted(directory.glob("*.key"))]
    if not keys:
        raise MestreamError(
            f"client key directory {directory}: no *.key file; copy each allowed subscriber's NAME.key into it"
        )
    return keys
