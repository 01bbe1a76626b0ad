"""Crash safety of `heliograph serve` as a real process tree under load: after `kill -9` of `serve`
its gateway children stop by themselves (spooling what they hold) and free the port, a restart
serves at once, and the records lost are counted against the requests that were answered 200.
Then the same with the whole tree killed at once, which loses what the children held unacknowledged:
a shipping interval (200 ms) of traffic plus the batch the API was making durable. The lifeline's
portable half (a pipe) and its race with an early death are tested on their own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner

from conftest import Fake
from heliograph.cli.main import cli
from heliograph.ingest.quarantine import Quarantine
from heliograph.ingest.shipper import LogShipper
from heliograph.ingest.spool import Spool
from heliograph.ingest.wire import decode_records
from heliograph.lifeline import LIFELINE_FD_ENV, PARENT_PID_ENV
from heliograph.telemetry import Telemetry
from test_shipping import record

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads the process tree in /proc")

RATE_PER_S = 50
LOAD_S = 3.0
KILL_AFTER_S = 2.5
SHIPPING_INTERVAL_S = 0.2  # the gateway child's LogShipper


def free_ports(count: int) -> list[int]:
    """Ports free now, all different (each is held until every one is chosen)."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has stopped; only its parent's wait is missing


def port_is_free(port: int) -> bool:
    """Bindable the way `serve` binds (SO_REUSEADDR), so only a listener makes it busy."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Tree:
    """`heliograph serve` processes started by this test, and the gateway children each had."""

    command: list[str]
    env: dict[str, str]
    log: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    children: list[int] = field(default_factory=list)

    async def start(self, *ports: int) -> subprocess.Popen[bytes]:
        process = self._spawn()
        for port in ports:
            await self._wait_until_up(process, port)
        self.children += children_of(process.pid)
        return process

    def _spawn(self) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as log:
            process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=log, start_new_session=True
            )
        self.started.append(process)
        return process

    async def _wait_until_up(self, process: subprocess.Popen[bytes], port: int) -> None:
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as session:
            while True:
                assert process.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, "serve did not start within 30 s"
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.05)

    def kill_all(self) -> None:
        """Whatever is still running, by pid: what the test started, then what those started."""
        for process in self.started:
            if process.poll() is None:
                self.children += children_of(process.pid)
                process.kill()
            process.wait()
        for pid in self.children:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def tree(tmp_path: Path, fake: Fake) -> Iterator[Tree]:
    gateway_port, api_port = free_ports(2)
    env = {
        **os.environ,
        "HELIOGRAPH_DATA_DIR": str(tmp_path / "data"),
        "HELIOGRAPH_OPENAI_BASE_URL": fake.origin,
        "HELIOGRAPH_GATEWAY_PORT": str(gateway_port),
        "HELIOGRAPH_API_PORT": str(api_port),
    }
    command = [sys.executable, "-m", "heliograph", "serve"]
    started = Tree(command, env, tmp_path / "serve.log")
    try:
        yield started
    finally:
        started.kill_all()


@dataclass
class Answered:
    """Request ids answered 200, with when each answer came (monotonic seconds)."""

    at: dict[str, float] = field(default_factory=dict)

    def age_ms(self, request_ids: set[str], at: float) -> float:
        """How long before `at` the oldest of `request_ids` was answered."""
        return max((at - self.at[request_id] for request_id in request_ids), default=0) * 1000


async def send_load(gateway: str, key: str, answered: Answered) -> None:
    """`RATE_PER_S` chat completions a second for `LOAD_S` seconds, each with its own id."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    timeout = aiohttp.ClientTimeout(total=15)

    async def one(session: aiohttp.ClientSession) -> None:
        request_id = str(uuid.uuid4())
        headers = {"Helicone-Auth": f"Bearer {key}", "Helicone-Request-Id": request_id}
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            url = f"{gateway}/openai/v1/chat/completions"
            async with session.post(url, json=body, headers=headers) as response:
                await response.read()
                if response.status == 200:
                    answered.at[request_id] = time.monotonic()

    async with aiohttp.ClientSession(timeout=timeout) as session:
        sent = []
        started = time.monotonic()
        for index in range(int(RATE_PER_S * LOAD_S)):
            await asyncio.sleep(max(0.0, started + index / RATE_PER_S - time.monotonic()))
            sent.append(asyncio.create_task(one(session)))
        await asyncio.gather(*sent)


async def stored_ids(api: str, key: str) -> list[str]:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{api}/v1/request/export", json={}, headers={"Authorization": f"Bearer {key}"}
        ) as response:
            assert response.status == 200, await response.text()
            lines = (await response.read()).splitlines()
    return [json.loads(line)["request_id"] for line in lines]


def spooled(data_dir: Path) -> int:
    """Batches waiting on disk: the gateway children's and the API's."""
    return sum(1 for _ in data_dir.glob("*spool/**/*.jsonl"))


async def lost_after_settling(api: str, key: str, answered: Answered, data_dir: Path) -> set[str]:
    """Answered requests not stored, once every spool is empty and nothing new has arrived for
    1.5 s (or after 15 s)."""
    deadline = time.monotonic() + 15
    last_change, seen = time.monotonic(), -1
    while True:
        stored = set(await stored_ids(api, key))
        missing = answered.at.keys() - stored
        settled = not spooled(data_dir) and time.monotonic() - last_change > 1.5
        if not missing or settled or time.monotonic() > deadline:
            return missing
        if len(stored) != seen:
            last_change, seen = time.monotonic(), len(stored)
        await asyncio.sleep(0.25)


@dataclass
class Crash:
    answered: Answered
    killed_at: float
    gone_after_s: float  # until every process of the tree had stopped


async def kill_under_load(gateway: str, key: str, serve: int, *, whole_tree: bool) -> Crash:
    """`kill -9` of `serve` (or of its process group) midway through the load."""
    answered = Answered()
    load = asyncio.create_task(send_load(gateway, key, answered))
    await asyncio.sleep(KILL_AFTER_S)
    pids = [serve, *children_of(serve)]
    killed_at = time.monotonic()
    if whole_tree:
        os.killpg(serve, signal.SIGKILL)  # started with its own session: group id = pid
    else:
        os.kill(serve, signal.SIGKILL)
    try:
        while any(alive(pid) for pid in pids):
            assert time.monotonic() - killed_at < 2, "the gateway outlived serve by 2 s"
            await asyncio.sleep(0.01)
        return Crash(answered, killed_at, time.monotonic() - killed_at)
    finally:
        await load


@pytest.mark.slow  # three starts of `serve` and six seconds of load: about 20 s
async def test_kill_9_of_serve_then_of_the_whole_tree(tree: Tree) -> None:
    data_dir = Path(tree.env["HELIOGRAPH_DATA_DIR"])
    init = CliRunner().invoke(cli, ["init", "--data-dir", str(data_dir), "--json"])
    key = json.loads(init.output.splitlines()[-1])["api_key"]
    gateway_port = int(tree.env["HELIOGRAPH_GATEWAY_PORT"])
    api_port = int(tree.env["HELIOGRAPH_API_PORT"])
    gateway, api = f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{api_port}"

    # (a) `kill -9` of serve alone: its children are told by the kernel and their lifeline.
    serve = await tree.start(gateway_port, api_port)
    assert children_of(serve.pid), "serve started no gateway process"
    a = await kill_under_load(gateway, key, serve.pid, whole_tree=False)
    assert port_is_free(gateway_port)
    assert port_is_free(api_port)
    spooled_a = spooled(data_dir)
    restarted_at = time.monotonic()
    serve = await tree.start(gateway_port, api_port)
    restart_s = time.monotonic() - restarted_at
    lost_a = await lost_after_settling(api, key, a.answered, data_dir)

    # (b) `kill -9` of the whole tree: children die holding up to a shipping interval.
    b = await kill_under_load(gateway, key, serve.pid, whole_tree=True)
    serve = await tree.start(gateway_port, api_port)
    lost_b = await lost_after_settling(api, key, b.answered, data_dir)

    oldest_b_ms = b.answered.age_ms(lost_b, b.killed_at)
    stored = await stored_ids(api, key)
    duplicates = len(stored) - len(set(stored))
    print(
        f"\n(a) kill -9 serve: {len(a.answered.at)} answered 200, {len(lost_a)} lost; children "
        f"gone {a.gone_after_s:.2f} s after, leaving {spooled_a} batches spooled; restart "
        f"served in {restart_s:.2f} s"
        f"\n(b) kill -9 of the tree: {len(b.answered.at)} answered 200, {len(lost_b)} lost, "
        f"the oldest answered {oldest_b_ms:.0f} ms before the kill; {duplicates} stored twice"
    )
    serve.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(serve.wait, 30) == 0
    assert not lost_a, f"(a) lost {len(lost_a)} of {len(a.answered.at)}"
    assert duplicates == 0, "a batch re-sent after a crash was stored twice"
    # The children die with what they had not yet shipped (up to one interval) and the batch in
    # flight until the API has it on disk (tens of ms when idle, hundreds on a busy machine);
    # everything answered before that survives.
    assert oldest_b_ms <= 5 * SHIPPING_INTERVAL_S * 1000, f"(b) lost {len(lost_b)}"


WAITER = """
import asyncio
from heliograph.lifeline import wait_for_stop

async def main():
    stopped = asyncio.create_task(wait_for_stop())
    await asyncio.sleep(0.1)
    print("waiting", flush=True)
    await stopped
    print("stopped", flush=True)

asyncio.run(main())
"""


def test_a_child_stops_when_its_lifeline_closes() -> None:
    """The portable half, alone: this process lives on, only the pipe's write end closes."""
    read_end, write_end = os.pipe()
    env = {**os.environ, PARENT_PID_ENV: str(os.getpid()), LIFELINE_FD_ENV: str(read_end)}
    child = subprocess.Popen(
        [sys.executable, "-c", WAITER], env=env, pass_fds=(read_end,), stdout=subprocess.PIPE
    )
    os.close(read_end)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"waiting\n"
        assert child.poll() is None
        os.close(write_end)
        assert child.wait(timeout=5) == 0
        assert child.stdout.read() == b"stopped\n"
    finally:
        child.kill()
        child.wait()


def test_a_child_adopted_before_it_watched_stops_at_once() -> None:
    """The parent died between the child's start and its watching: it has another parent now."""
    env = {**os.environ, PARENT_PID_ENV: str(os.getpid() + 1_000_000)}
    finished = subprocess.run(
        [sys.executable, "-c", WAITER], env=env, capture_output=True, timeout=10
    )
    assert finished.stdout == b"waiting\nstopped\n"


async def test_a_stopping_shipper_spools_its_batch_in_flight_and_its_pending(
    tmp_path: Path,
) -> None:
    """A gateway child whose `serve` was killed mid-post: the batch in flight is never answered,
    newer records wait behind it, and the API is gone by the time the child stops. Both go to
    the spool for the next child to replay."""
    posted = asyncio.Event()
    hanging: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hanging.append(writer)
        posted.set()
        await reader.read()

    api = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = api.sockets[0].getsockname()[1]
    spool = Spool(tmp_path / "spool")
    quarantine = Quarantine(tmp_path / "quarantine", Telemetry().quarantined)
    shipper = LogShipper(
        f"http://127.0.0.1:{port}/v1/log/batch",
        "token",
        spool,
        flush_rows=1000,
        flush_interval_ms=20,
        quarantine=quarantine,
    )
    await shipper.start()
    try:
        in_flight, pending = record(str(uuid.uuid4())), record(str(uuid.uuid4()))
        shipper.put(in_flight)
        await asyncio.wait_for(posted.wait(), 5)
        shipper.put(pending)
        api.close()  # no longer listening; the batch in flight still waits for its answer
        await shipper.stop()
    finally:
        for writer in hanging:
            writer.close()
    spooled_ids = {
        shipped.request_id
        for path in spool.pending()
        for shipped in decode_records(path.read_bytes())
    }
    assert spooled_ids == {in_flight.request_id, pending.request_id}
