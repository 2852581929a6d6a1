"""Make NATS user nkeys for deploy/nats: one seed file (secret, 0600) and one public key per name.

An nkey is an ed25519 key pair in NATS's text form: the public key (U..., for a user) goes into the server's
configuration, which then knows who may connect without ever holding a secret; the seed (SU...) stays with
whoever connects, who signs the server's challenge with it. The `nkeys` package (what nats-py signs with;
`pip install 'mestream[nats]'`) makes them, as NATS's own `nk -gen user` does.

    python deploy/nats/make_nkeys.py --out /etc/mestream/nats mestream leaf-dev1 reader
    # mestream.nk, mestream.pub, leaf-dev1.nk, ...; prints each name's public key

Where each goes (deploy/nats/leaf.conf and hub.conf say the same):
- mestream: the device's `mestream run` ([publish] nats_nkey = ".../mestream.nk"); its public key is the leaf's
  MESTREAM_PUBLISH_NKEY.
- leaf-dev1: the device's leaf link to the hub; its seed is the leaf's MESTREAM_LEAF_SEED (nats.env, 0600), its
  public key one entry in the hub's leafnodes users (MESTREAM_LEAF_NKEY).
- reader: `mestream listen --nats URL --nats-nkey reader.nk` at the centre; its public key is the hub's
  MESTREAM_READER_NKEY.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def make_user_nkey() -> tuple[str, str]:
    """(seed "SU...", public key "U...") of a new user nkey."""
    try:
        import nkeys
    except ImportError:
        sys.exit("make_nkeys: the nkeys package is not installed: pip install 'mestream[nats]' (or pip install nkeys)")
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key
    return seed.decode("ascii"), public.decode("ascii")


def write_nkey(folder: Path, name: str, force: bool = False) -> tuple[Path, str]:
    """NAME.nk (the seed, 0600, never half-written) and NAME.pub in `folder`; returns (seed file, public key)."""
    seed_file, public_file = folder / f"{name}.nk", folder / f"{name}.pub"
    if seed_file.exists() and not force:
        sys.exit(f"make_nkeys: {seed_file} exists; keep it, or pass --force to replace it (whoever uses it then needs the new one)")
    seed, public = make_user_nkey()
    tmp = seed_file.with_suffix(".nk.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(seed + "\n")
    os.replace(tmp, seed_file)
    public_file.write_text(public + "\n")
    return seed_file, public


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for NAME.nk (seed, 0600) and NAME.pub (created 0700)")
    ap.add_argument("--force", action="store_true", help="replace existing keys of those names")
    ap.add_argument("names", nargs="+", help="one key per name, e.g. mestream leaf-dev1 reader")
    args = ap.parse_args(argv)
    for name in args.names:
        if not NAME.match(name):
            sys.exit(f"make_nkeys: name {name!r}: expected 1-64 letters, digits, '.', '-' or '_' (it names the files); rename it")
    args.out.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in args.names:
        seed_file, public = write_nkey(args.out, name, args.force)
        print(f"{name}  {public}  (seed: {seed_file}, keep it secret)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
