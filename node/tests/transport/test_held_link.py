"""A peer link that stops carrying data without closing (Toxiproxy's disabled proxy before it
closes, its `timeout` toxic, a stalled middlebox) must not freeze the sender's event loop.

The sender runs in a child process: when the bug is present its event loop spins without ever
yielding, so nothing in-process could observe (or stop) it; the parent kills the child at a
bounded deadline instead.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.timeouts import CONVERGE

CHILD = r'''
import asyncio, io, json, socket, sys, time
from petcd.logutil import new_logger
from petcd.raft.types import Entry, Message, MessageType
from petcd.transport import PeerTransport
from harness.ports import free_port


async def main() -> None:
    got: list[Message] = []
    b_url = f"http://127.0.0.1:{free_port()}"
    b = PeerTransport(2, 1, [b_url], got.append, new_logger(stream=io.StringIO()),
                      advertise_urls=[b_url])
    await b.start()
    hold = asyncio.Event()

    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter, held: bool) -> None:
        while not (held and hold.is_set()) and (data := await r.read(65536)):
            w.write(data)
            await w.drain()
        if held:
            await asyncio.Event().wait()  # hold: never read again, never close

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", int(b_url.rsplit(":", 1)[1]))
        await asyncio.gather(pipe(r, uw, True), pipe(ur, w, False))

    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # accepted sockets inherit it
    lsock.bind(("127.0.0.1", 0))
    fwd = await asyncio.start_server(handle, sock=lsock)
    fport = lsock.getsockname()[1]

    logbuf = io.StringIO()
    a_url = f"http://127.0.0.1:{free_port()}"
    a = PeerTransport(1, 1, [a_url], lambda m: None, new_logger(stream=logbuf),
                      advertise_urls=[a_url], write_timeout=1.0)
    await a.start()
    a.add_peer(2, [f"http://127.0.0.1:{fport}"])
    deadline = time.monotonic() + 15
    while not got:  # the link works through the forwarder first
        assert time.monotonic() < deadline, "first heartbeat never arrived"
        a.send([Message(type=MessageType.MsgHeartbeat, to=2, frm=1, term=1)])
        await asyncio.sleep(0.02)
    hold.set()
    print("held", flush=True)
    data = b"x" * 16384
    for i in range(1, 1025):  # 16 MiB: more than the kernel buffers of the held connection
        a.send([Message(type=MessageType.MsgApp, to=2, frm=1, term=1,
                        entries=[Entry(term=1, index=i, data=data)])])
        await asyncio.sleep(0.001)  # never returns once the loop is frozen
    print("loop alive", flush=True)

    def inactive() -> bool:
        return any(json.loads(line)["msg"].startswith("peer became inactive")
                   for line in logbuf.getvalue().splitlines())

    while not inactive():  # the write timeout notices the held link
        assert time.monotonic() < deadline + 15, "held link never reported inactive"
        await asyncio.sleep(0.05)
    print("inactive", flush=True)
    for t in (a, b):
        await t.stop()
    fwd.close()


asyncio.run(main())
'''


def test_held_link_does_not_freeze_the_event_loop() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = proc.communicate(timeout=CONVERGE)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    lines = out.splitlines()
    assert "held" in lines, f"the link never worked through the forwarder:\n{err}"
    assert "loop alive" in lines, (
        f"the sender's event loop froze on a held link (output {lines}):\n{err}"
    )
    assert "inactive" in lines, f"the held link was never reported inactive:\n{err}"
    assert proc.returncode == 0, err
