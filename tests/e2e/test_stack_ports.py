"""No door of the team stack opens without credentials: every TCP port its processes listen on refuses
anonymous list, get, put and delete (over HTTP, HTTPS without a certificate and HTTPS with another stack's
certificate); its gRPC ports and Unix sockets talk only to the stack's certificate or its owner; and the S3
keys and MLflow logins still work. (scripts/stack_security.py: what locks them.)"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from scripts.stack_security import TLS_FOLDER, write_weed_security
from tests.e2e.stack import Stack
from tests.helpers import VENV_BIN

HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + empty SETTINGS
SETTINGS_FRAME = 4
LISTENING_UNIX = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags
ARTIFACT_TEXT = "the registered model's file\n"
Connect = Callable[[], http.client.HTTPConnection]


@pytest.fixture(scope="module")
def artifact(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An artifact logged through the tracking server as the pipeline user: its run, S3 key, volume fid."""
    client = stack.client("pipeline")
    run = client.create_run(client.create_experiment("stack-ports"))
    local = tmp_path_factory.mktemp("artifact") / "weights.txt"
    local.write_text(ARTIFACT_TEXT)
    client.log_artifact(run.info.run_id, str(local))
    bucket = stack.admin["STACK_S3_BUCKET"]
    key = f"{run.info.artifact_uri.removeprefix('mlflow-artifacts:/')}/weights.txt"
    metadata = weed_shell(stack, stack.folder, local.parent, f"fs.meta.cat /buckets/{bucket}/{key}")
    found = re.search(r'"fileId":\s*"([^"]+)"', metadata)
    assert found, "the stack's own certificate reads the filer's metadata over gRPC"
    return {"bucket": bucket, "key": key, "fid": found.group(1)}


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with another stack's security.toml and certificate: a local account that made its own CA."""
    folder = tmp_path_factory.mktemp("stranger")
    write_weed_security(folder)
    return folder


def anonymous_requests(artifact: dict[str, str]) -> Iterator[tuple[str, str, bytes | None]]:
    """List, get, put and delete, as each kind of server spells them (filer, S3, MLflow, volume server,
    master); the deletes come last."""
    bucket, key, fid = artifact["bucket"], artifact["key"], artifact["fid"]
    artifacts = "/api/2.0/mlflow-artifacts/artifacts"
    files = (f"/buckets/{bucket}/{key}", f"/{bucket}/{key}", f"{artifacts}/{key}", f"/{fid}")
    lists = ("/", "/buckets/", f"/{bucket}?list-type=2", f"{artifacts}?path=", "/dir/status", "/vol/status")
    for path in lists:
        yield "GET", path, None
    for path in files:
        yield "GET", path, None
    yield "GET", "/dir/assign", None  # the master hands out write tokens for the volume server
    yield "GET", "/dir/lookup?volumeId=" + fid.split(",", maxsplit=1)[0], None
    for path in files:
        yield "PUT", path, b"swapped"
        yield "POST", path, b"swapped"
    for path in files:
        yield "DELETE", path, None
    yield "GET", f"/col/delete?collection={bucket}", None


def test_every_port_of_the_stack_refuses_anonymous_list_get_put_and_delete(
    stack: Stack, artifact: dict[str, str], stranger: Path
) -> None:
    ports, _ = listening(stack_processes(stack.folder))
    assert set(state(stack)["ports"].values()) <= ports, "every port the stack chose listens"
    answered = []
    for name, connect in doors(ports, stranger):
        for method, path, body in anonymous_requests(artifact):
            status = answer(connect, method, path, body)
            if status is not None and 200 <= status < 300:
                answered.append(f"{name} {method} {path}: {status}")
    assert not answered, answered
    body = stack.s3().get_object(Bucket=artifact["bucket"], Key=artifact["key"])["Body"].read().decode()
    assert body == ARTIFACT_TEXT, "the artifact is still there, unchanged"


def test_the_grpc_ports_and_every_socket_outside_the_stack_folder_talk_to_its_certificate_only(
    stack: Stack, artifact: dict[str, str], stranger: Path, tmp_path: Path
) -> None:
    """A Unix socket in the 0700 stack folder is for its owner only; the others, weed's gRPC sockets at fixed
    names in /tmp, are gRPC doors like its gRPC ports."""
    _, sockets = listening(stack_processes(stack.folder))
    assert stack.folder.stat().st_mode & 0o777 == 0o700
    grpc = [("127.0.0.1", port) for name, port in state(stack)["ports"].items() if name.endswith("_grpc")]
    grpc += [path for path in sorted(sockets) if stack.folder not in Path(path).parents]
    for door in grpc:
        assert not speaks_grpc(door, None), door
        assert not speaks_grpc(door, stranger / TLS_FOLDER), door
        assert speaks_grpc(door, stack.folder / TLS_FOLDER), f"{door}: the probe works"
    path = f"/buckets/{artifact['bucket']}/{artifact['key']}"
    read = weed_shell(stack, tmp_path, tmp_path, f"fs.meta.cat {path}")
    assert artifact["fid"] not in read, "weed shell without the stack's certificate reads no metadata"


def test_the_s3_keys_and_the_mlflow_logins_still_work(stack: Stack, tmp_path: Path) -> None:
    s3, bucket = stack.s3(), stack.admin["STACK_S3_BUCKET"]
    s3.put_object(Bucket=bucket, Key="ports-check/hello.txt", Body=b"hello")
    assert s3.get_object(Bucket=bucket, Key="ports-check/hello.txt")["Body"].read() == b"hello"
    s3.delete_object(Bucket=bucket, Key="ports-check/hello.txt")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="ports-check/")
    client = stack.client("pipeline")
    run = client.create_run(client.create_experiment("stack-ports-logins"))
    (tmp_path / "logged.txt").write_text("logged through the tracking server")
    client.log_artifact(run.info.run_id, str(tmp_path / "logged.txt"))
    (tmp_path / "back").mkdir()
    downloaded = client.download_artifacts(run.info.run_id, "logged.txt", str(tmp_path / "back"))
    assert Path(downloaded).read_text() == "logged through the tracking server"


def doors(ports: set[int], stranger: Path) -> Iterator[tuple[str, Connect]]:
    """Each way in through a port, as an anonymous local account would try it."""
    for port in sorted(ports):
        yield f"http://127.0.0.1:{port}", partial(http.client.HTTPConnection, "127.0.0.1", port, timeout=5)
        for who, certificate in (("no certificate", None), ("another CA", stranger / TLS_FOLDER)):
            context = client_context(certificate)
            https = partial(http.client.HTTPSConnection, "127.0.0.1", port, timeout=5, context=context)
            yield f"https://127.0.0.1:{port} ({who})", https


def answer(connect: Connect, method: str, path: str, body: bytes | None) -> int | None:
    """The HTTP status, or None when the connection is refused, reset, or not answered in HTTP."""
    connection = connect()
    try:
        connection.request(method, path, body=body)
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def client_context(certificates: Path | None, protocols: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
    """TLS that trusts any server, presenting the certificate in `certificates` (a weed-tls folder) if any."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(list(protocols))
    if certificates is not None:
        context.load_cert_chain(certificates / "stack.crt", certificates / "stack.key")
    return context


def speaks_grpc(address: tuple[str, int] | str, certificates: Path | None) -> bool:
    """Whether the server answers an HTTP/2 client preface with its SETTINGS, as a gRPC server does: in clear
    text when `certificates` is None, else over TLS presenting that certificate."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as raw:
        raw.settimeout(5)
        try:
            raw.connect(address)
            stream = raw if certificates is None else client_context(certificates, ("h2",)).wrap_socket(raw)
            stream.sendall(HTTP2_PREFACE)
            head = stream.recv(9)
        except OSError:  # refused, reset, or a TLS alert (ssl.SSLError is an OSError)
            return False
    return len(head) == 9 and head[3] == SETTINGS_FRAME


def weed_shell(stack: Stack, folder: Path, home: Path, command: str) -> str:
    """`weed shell` run in `folder` (weed reads ./security.toml there), HOME=`home` (not the
    ~/.seaweedfs/security.toml of whoever runs this); what it printed within 15 s."""
    ports = state(stack)["ports"]
    master = f"-master=127.0.0.1:{ports['master']}.{ports['master_grpc']}"
    filer = f"-filer=127.0.0.1:{ports['filer']}.{ports['filer_grpc']}"
    try:
        done = subprocess.run(
            [str(VENV_BIN / "weed"), "shell", master, filer],
            input=command + "\n",
            cwd=folder,
            env=os.environ | {"HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        return expired.stdout.decode(errors="replace") if isinstance(expired.stdout, bytes) else ""
    return done.stdout + done.stderr


def state(stack: Stack) -> dict:
    return json.loads((stack.folder / "state.json").read_text())


def stack_processes(folder: Path) -> set[int]:
    """The processes `scripts/stack.py up` started (mlflow.pid, weed.pid) and all their descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):  # the processes
        try:
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    waiting = [int((folder / f"{name}.pid").read_text().split()[0]) for name in ("mlflow", "weed")]
    while waiting:
        pid = waiting.pop()
        found.add(pid)
        waiting += children.get(pid, [])
    return found


def listening(pids: set[int]) -> tuple[set[int], set[str]]:
    """The TCP ports and the Unix socket paths (made absolute) these processes listen on."""
    owners = _socket_owners(pids)
    ports = {
        int(fields[1].rsplit(":", 1)[1], 16)
        for table in ("tcp", "tcp6")
        for fields in _rows(Path(f"/proc/net/{table}"))
        if fields[3] == "0A" and fields[9] in owners  # 0A: LISTEN
    }
    sockets = {
        os.path.join(os.readlink(f"/proc/{owners[fields[6]]}/cwd"), fields[7])  # a relative name: its cwd's
        for fields in _rows(Path("/proc/net/unix"))
        if len(fields) > 7 and int(fields[3], 16) & LISTENING_UNIX and fields[6] in owners
    }
    return ports, sockets


def _socket_owners(pids: set[int]) -> dict[str, int]:
    """The inode of each socket these processes hold, and which of them holds it."""
    owners = {}
    for pid in pids:
        try:
            links = [os.readlink(entry.path) for entry in os.scandir(f"/proc/{pid}/fd")]
        except OSError:
            continue  # gone meanwhile
        owners |= {link[len("socket:[") : -1]: pid for link in links if link.startswith("socket:[")}
    return owners


def _rows(table: Path) -> list[list[str]]:
    return [line.split() for line in table.read_text().splitlines()[1:]]
