"""The HTTP API: JSON shapes, status codes and Toxiproxy's exact error bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
from toxiproxy_testlib import (
    EchoServer,
    ToxiproxyProcess,
    can_connect,
    connect,
    listen_port,
    recv_exactly,
)


def api(server: ToxiproxyProcess, method: str, path: str, body: Any = None) -> requests.Response:
    """Send a raw API request (JSON body unless ``body`` is bytes)."""
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body)
    return requests.request(method, server.url + path, data=data, timeout=10)


def test_create_show_list_and_proxy_traffic(
    client: Any, server: ToxiproxyProcess, echo: EchoServer
) -> None:
    proxy = client.create(upstream=echo.address, name="one")
    assert proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:") and listen_port(proxy) != 0
    assert set(client.proxies()) == {"one"}

    shown = api(server, "GET", "/proxies/one")
    assert shown.status_code == 200
    assert shown.headers["Content-Type"] == "application/json"
    assert shown.json() == {
        "name": "one",
        "listen": proxy.listen,
        "upstream": echo.address,
        "enabled": True,
        "toxics": [],
    }
    assert list(shown.json()) == ["name", "listen", "upstream", "enabled", "toxics"]

    with connect(proxy) as sock:
        sock.sendall(b"hello through the proxy")
        assert recv_exactly(sock, 23) == b"hello through the proxy"


def test_create_returns_201_and_duplicate_is_409(
    server: ToxiproxyProcess, client: Any, echo: EchoServer
) -> None:
    body = {"name": "dup", "upstream": echo.address, "listen": "127.0.0.1:0"}
    created = api(server, "POST", "/proxies", body)
    assert created.status_code == 201
    again = api(server, "POST", "/proxies", body)
    assert again.status_code == 409
    assert again.json() == {"error": "proxy already exists", "status": 409}
    assert again.text.endswith("}\n")
    with pytest.raises(ProxyExists):
        client.create(upstream=echo.address, name="dup")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"upstream": "127.0.0.1:1"}, "missing required field: name"),
        ({"name": "x"}, "missing required field: upstream"),
        (b"", "bad request body: EOF"),
        (
            {"name": "x", "upstream": "127.0.0.1:1", "enabled": "yes"},
            "bad request body: json: cannot unmarshal string into Go struct field "
            "Proxy.enabled of type bool",
        ),
    ],
)
def test_create_bad_requests(
    server: ToxiproxyProcess, client: Any, body: Any, message: str
) -> None:
    response = api(server, "POST", "/proxies", body)
    assert response.status_code == 400
    assert response.json() == {"error": message, "status": 400}


def test_listen_conflict_is_500_with_go_text(
    server: ToxiproxyProcess, client: Any, echo: EchoServer
) -> None:
    first = client.create(upstream=echo.address, name="first")
    response = api(
        server,
        "POST",
        "/proxies",
        {"name": "second", "upstream": echo.address, "listen": first.listen},
    )
    assert response.status_code == 500
    assert response.json() == {
        "error": f"listen tcp {first.listen}: bind: address already in use",
        "status": 500,
    }
    assert "second" not in client.proxies()


def test_not_found_errors(server: ToxiproxyProcess, client: Any, echo: EchoServer) -> None:
    for method, path in [
        ("GET", "/proxies/nope"),
        ("POST", "/proxies/nope"),
        ("DELETE", "/proxies/nope"),
        ("GET", "/proxies/nope/toxics"),
        ("POST", "/proxies/nope/toxics"),
        ("GET", "/proxies/nope/toxics/t"),
    ]:
        response = api(server, method, path, {})
        assert response.status_code == 404, (method, path)
        assert response.json() == {"error": "proxy not found", "status": 404}
    client.create(upstream=echo.address, name="p")
    for method in ("GET", "POST", "DELETE"):
        response = api(server, method, "/proxies/p/toxics/nope", {})
        assert response.status_code == 404
        assert response.json() == {"error": "toxic not found", "status": 404}
    with pytest.raises(NotFound):
        client.get_proxy("p").destroy_toxic("nope")


def test_unknown_route_and_wrong_method(server: ToxiproxyProcess, client: Any) -> None:
    missing = api(server, "GET", "/nothing-here")
    assert missing.status_code == 404
    assert missing.text == "404 page not found\n"
    wrong = api(server, "PUT", "/proxies")
    assert wrong.status_code == 405
    browser = requests.get(
        server.url + "/proxies", headers={"User-Agent": "Mozilla/5.0"}, timeout=10
    )
    assert browser.status_code == 403


def test_toxic_crud_and_json(server: ToxiproxyProcess, client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="tox")
    created = api(
        server,
        "POST",
        "/proxies/tox/toxics",
        {"type": "latency", "attributes": {"latency": 10}},
    )
    assert created.status_code == 200
    assert created.json() == {
        "attributes": {"latency": 10, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1,
    }
    proxy.add_toxic(type="slicer", stream="upstream", name="sl", toxicity=0.5)
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "sl"}
    assert toxics["sl"].attributes == {"average_size": 0, "size_variation": 0, "delay": 0}
    assert toxics["sl"].toxicity == 0.5
    # Toxiproxy lists the upstream chain first.
    listed = api(server, "GET", "/proxies/tox/toxics").json()
    assert [t["name"] for t in listed] == ["sl", "latency_downstream"]

    updated = api(
        server, "POST", "/proxies/tox/toxics/latency_downstream", {"attributes": {"jitter": 3}}
    )
    assert updated.status_code == 200
    assert updated.json()["attributes"] == {"latency": 10, "jitter": 3}
    patched = api(server, "PATCH", "/proxies/tox/toxics/sl", {"toxicity": 0.25})
    assert patched.json()["toxicity"] == 0.25
    assert api(server, "GET", "/proxies/tox/toxics/sl").json()["toxicity"] == 0.25

    assert proxy.destroy_toxic("sl") is True
    gone = api(server, "DELETE", "/proxies/tox/toxics/latency_downstream")
    assert gone.status_code == 204
    assert api(server, "GET", "/proxies/tox").json()["toxics"] == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"type": "nonsense"}, 400, "invalid toxic type"),
        ({}, 400, "invalid toxic type"),
        (
            {"type": "latency", "stream": "sideways"},
            400,
            "stream was invalid, can be either upstream or downstream",
        ),
        (
            {"type": "latency", "attributes": {"latency": 1.5}},
            400,
            "bad request body: json: cannot unmarshal number 1.5 into Go struct field "
            "LatencyToxic.attributes.latency of type int64",
        ),
        (b"{not json", 400, None),
    ],
)
def test_toxic_bad_requests(
    server: ToxiproxyProcess,
    client: Any,
    echo: EchoServer,
    body: Any,
    status: int,
    message: str | None,
) -> None:
    client.create(upstream=echo.address, name="bad")
    response = api(server, "POST", "/proxies/bad/toxics", body)
    assert response.status_code == status
    payload = response.json()
    assert payload["status"] == status
    if message is None:
        assert payload["error"].startswith("bad request body: ")
    else:
        assert payload["error"] == message


def test_duplicate_toxic_is_409(server: ToxiproxyProcess, client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="dt")
    proxy.add_toxic(type="latency", attributes={"latency": 1})
    response = api(server, "POST", "/proxies/dt/toxics", {"type": "latency"})
    assert response.status_code == 409
    assert response.json() == {"error": "toxic already exists", "status": 409}
    with pytest.raises(ProxyExists):
        proxy.add_toxic(type="latency")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="unknown")


def test_disable_enable_and_update_fields(
    server: ToxiproxyProcess, client: Any, echo_factory: Any
) -> None:
    first, second = echo_factory(), echo_factory()
    proxy = client.create(upstream=first.address, name="upd")
    port = listen_port(proxy)
    proxy.disable()
    shown = api(server, "GET", "/proxies/upd").json()
    assert shown["enabled"] is False
    assert not can_connect(port)
    proxy.enable()
    assert api(server, "GET", "/proxies/upd").json()["enabled"] is True
    assert can_connect(port)

    changed = api(server, "PATCH", "/proxies/upd", {"upstream": second.address})
    assert changed.status_code == 200
    assert changed.json()["upstream"] == second.address
    assert changed.json()["listen"] == proxy.listen
    with connect(proxy) as sock:
        sock.sendall(b"to-second")
        assert recv_exactly(sock, 9) == b"to-second"
    assert bytes(second.received) == b"to-second"

    moved = api(server, "POST", "/proxies/upd", {"listen": "127.0.0.1:0"})
    new_listen = moved.json()["listen"]
    assert new_listen != proxy.listen and moved.json()["enabled"] is True
    assert not can_connect(port)


def test_delete_proxy(server: ToxiproxyProcess, client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="del")
    port = listen_port(proxy)
    response = api(server, "DELETE", "/proxies/del")
    assert response.status_code == 204 and response.content == b""
    assert client.proxies() == {}
    assert not can_connect(port)


def test_populate_creates_keeps_and_replaces(
    server: ToxiproxyProcess, client: Any, echo_factory: Any
) -> None:
    first, second = echo_factory(), echo_factory()
    body = [
        {"name": "a", "listen": "127.0.0.1:0", "upstream": first.address},
        {"name": "b", "listen": "127.0.0.1:0", "upstream": first.address, "enabled": False},
    ]
    response = api(server, "POST", "/populate", body)
    assert response.status_code == 201
    proxies = response.json()["proxies"]
    assert [p["name"] for p in proxies] == ["a", "b"]
    assert [p["enabled"] for p in proxies] == [True, False]
    a_listen = proxies[0]["listen"]

    same = api(
        server, "POST", "/populate", [{"name": "a", "listen": a_listen, "upstream": first.address}]
    )
    assert same.json()["proxies"][0]["listen"] == a_listen

    replaced = api(
        server, "POST", "/populate", [{"name": "a", "listen": a_listen, "upstream": second.address}]
    )
    assert replaced.status_code == 201
    assert replaced.json()["proxies"][0]["upstream"] == second.address
    assert client.proxies()["a"].upstream == second.address

    empty = api(server, "POST", "/populate", [])
    assert empty.status_code == 201 and empty.json() == {"proxies": None}


def test_populate_errors(server: ToxiproxyProcess, client: Any, echo: EchoServer) -> None:
    missing = api(
        server, "POST", "/populate", [{"name": "ok", "upstream": echo.address}, {"name": "x"}]
    )
    assert missing.status_code == 400
    assert missing.json() == {
        "error": "missing required field: upstream at proxy 2",
        "status": 400,
        "proxies": None,
    }
    assert client.proxies() == {}  # validated before anything was created
    bad = api(server, "POST", "/populate", b"{")
    assert bad.status_code == 400 and bad.json()["proxies"] is None


def test_reset_removes_toxics_and_enables(
    server: ToxiproxyProcess, client: Any, echo: EchoServer
) -> None:
    proxy = client.create(upstream=echo.address, name="rst")
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    proxy.add_toxic(type="latency", stream="upstream", attributes={"latency": 1000})
    proxy.disable()
    assert client.reset() is True
    shown = api(server, "GET", "/proxies/rst").json()
    assert shown["enabled"] is True and shown["toxics"] == []
    with connect(proxy) as sock:
        sock.sendall(b"ping")
        assert recv_exactly(sock, 4) == b"ping"


def test_version(server: ToxiproxyProcess, client: Any) -> None:
    raw = client.version()
    assert raw is not None
    assert "version" in json.loads(raw)
    response = api(server, "GET", "/version")
    assert response.headers["Content-Type"] == "application/json;charset=utf-8"


def test_listen_defaults_and_bad_listen(
    server: ToxiproxyProcess, client: Any, echo: EchoServer
) -> None:
    # No listen address: Go listens on every interface on a free port.
    anywhere = api(server, "POST", "/proxies", {"name": "any", "upstream": echo.address})
    assert anywhere.status_code == 201
    listen = anywhere.json()["listen"]
    assert listen.startswith(("[::]:", "0.0.0.0:")) and not listen.endswith(":0")
    bad = api(
        server, "POST", "/proxies", {"name": "bad", "upstream": echo.address, "listen": "nope"}
    )
    assert bad.status_code == 500
    assert bad.json() == {
        "error": "listen tcp: address nope: missing port in address",
        "status": 500,
    }


def test_config_file_populates_at_start(tmp_path: Any, echo: EchoServer) -> None:
    import os
    import subprocess
    import sys

    from tests.support.wait import wait_until
    from toxiproxy_testlib import HOST, PACKAGE_ROOT, free_port

    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps([{"name": "fromfile", "listen": "127.0.0.1:0", "upstream": echo.address}])
    )
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "toxiproxy_server",
            "-host",
            HOST,
            "-port",
            str(port),
            "-config",
            str(config),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: process.poll() is not None or can_connect(port), 15.0, "the API to listen"
        )
        listed = requests.get(f"http://{HOST}:{port}/proxies", timeout=10).json()
        assert list(listed) == ["fromfile"] and listed["fromfile"]["enabled"] is True
    finally:
        process.terminate()
        assert process.wait(10) == 0
