import stat
from pathlib import Path

import pytest
import zmq.auth

from edge.cli import main
from edge.keys import read_allowed_clients, read_keypair, read_public_key, write_keypair
from engines.errors import MestreamError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_mestream_keys_writes_both_files_0600_in_the_zeromq_certificate_format(tmp_path, capsys):
    out = tmp_path / "keys"
    assert main(["keys", "--out", str(out)]) == 0
    public_file, secret_file = out / "server.key", out / "server.key_secret"
    assert _mode(public_file) == 0o600 and _mode(secret_file) == 0o600
    assert _mode(out) == 0o700
    public, secret = zmq.auth.load_certificate(secret_file)  # pyzmq/czmq read them as their own
    assert zmq.auth.load_certificate(public_file) == (public, None)
    assert zmq.curve_public(secret) == public  # the pair belongs together
    assert public.decode() in capsys.readouterr().out
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


def test_an_existing_key_pair_is_kept_unless_forced(tmp_path, capsys):
    first = write_keypair(tmp_path, "laptop")
    old = read_public_key(first.public)
    assert main(["keys", "--out", str(tmp_path), "--name", "laptop"]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert read_public_key(first.public) == old
    write_keypair(tmp_path, "laptop", force=True)
    assert read_public_key(first.public) != old


@pytest.mark.parametrize("name", ["../server", "", "a/b", "-x"])
def test_a_key_name_that_is_not_a_plain_word_is_refused(tmp_path, name):
    with pytest.raises(MestreamError, match="key name"):
        write_keypair(tmp_path, name)


def test_a_secret_key_readable_by_others_is_refused_like_ssh_does(tmp_path):
    files = write_keypair(tmp_path, "server")
    files.secret.chmod(0o644)
    with pytest.raises(MestreamError, match="chmod 600"):
        read_keypair(files.secret)


def test_a_public_key_file_is_not_accepted_where_the_secret_is_needed(tmp_path):
    files = write_keypair(tmp_path, "server")
    with pytest.raises(MestreamError, match="only a public key"):
        read_keypair(files.public)


def test_an_empty_or_missing_allow_list_is_refused_with_what_to_copy(tmp_path):
    with pytest.raises(MestreamError, match="no such directory"):
        read_allowed_clients(tmp_path / "clients")
    (tmp_path / "clients").mkdir()
    with pytest.raises(MestreamError, match=r"copy each allowed subscriber's NAME\.key"):
        read_allowed_clients(tmp_path / "clients")


def test_a_damaged_key_file_names_the_file_and_the_problem(tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text('curve\n    public-key = "tooshort"\n')
    with pytest.raises(MestreamError, match="expected 40"):
        read_public_key(bad)
