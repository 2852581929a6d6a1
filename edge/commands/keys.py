"""`mestream keys`: make a CURVE key pair for the encrypted result stream.

On the device:       mestream keys --out /etc/mestream/keys                 (server.key, server.key_secret)
On a subscriber:     mestream keys --out ~/.mestream --name laptop          (laptop.key, laptop.key_secret)
Then copy laptop.key into the device's /etc/mestream/keys/clients/ and server.key to the subscriber.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "make a CURVE key pair (NAME.key to share, NAME.key_secret to keep; both 0600) for encrypted results"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="directory for the key files (created 0700)")
    parser.add_argument("--name", default="server", help="key name: server on the device, e.g. laptop on a subscriber")
    parser.add_argument("--force", action="store_true", help="replace an existing key pair of that name")


def run(args: argparse.Namespace) -> int:
    from edge.keys import read_public_key, write_keypair

    files = write_keypair(args.out, args.name, force=args.force)
    public = read_public_key(files.public).decode("ascii")
    print(f"public key  {files.public}  ({public}): give this file to the other side")
    print(f"secret key  {files.secret}: keep it here, mode 0600")
    return 0
