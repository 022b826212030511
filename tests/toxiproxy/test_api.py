"""The HTTP API: Toxiproxy's routes, status codes and error bodies (api.go), on raw httpx."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture
def api(toxiproxy_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=toxiproxy_url, timeout=5, trust_env=False) as http:
        yield http


@pytest.fixture
def names(api: httpx.Client) -> Iterator[list[str]]:
    """Proxy names to delete after the test."""
    created: list[str] = []
    yield created
    for name in created:
        api.delete(f"/proxies/{name}")


def _name(names: list[str]) -> str:
    name = f"api-{uuid.uuid4().hex[:10]}"
    names.append(name)
    return name


def _error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error": message, "status": status}


def test_version(api: httpx.Client) -> None:
    response = api.get("/version")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json()["version"], str)
    assert response.headers.get("X-Toxiproxy-Request-Id")


def test_browsers_are_refused(api: httpx.Client) -> None:
    response = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    assert response.status_code == 403


def test_proxy_lifecycle(api: httpx.Client, names: list[str], echo_server) -> None:
    name = _name(names)
    upstream = f"{echo_server[0]}:{echo_server[1]}"
    created = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": upstream})
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == name and body["upstream"] == upstream and body["enabled"] is True
    assert body["toxics"] == []
    host, _, port = body["listen"].rpartition(":")
    assert host == "127.0.0.1" and int(port) > 0  # port 0 reported as the real port

    assert api.get(f"/proxies/{name}").json() == body
    assert api.get("/proxies").json()[name] == body

    disabled = api.patch(f"/proxies/{name}", json={"enabled": False})
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert disabled.json()["listen"] == body["listen"]
    enabled = api.post(f"/proxies/{name}", json={"enabled": True})  # deprecated POST still works
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True

    deleted = api.delete(f"/proxies/{name}")
    assert deleted.status_code == 204 and deleted.content == b""
    _error(api.get(f"/proxies/{name}"), 404, "proxy not found")


def test_proxy_errors(api: httpx.Client, names: list[str], echo_server) -> None:
    name = _name(names)
    upstream = f"{echo_server[0]}:{echo_server[1]}"
    assert api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": upstream}).is_success
    _error(
        api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": upstream}),
        409,
        "proxy already exists",
    )
    _error(
        api.post("/proxies", json={"listen": "127.0.0.1:0", "upstream": upstream}),
        400,
        "missing required field: name",
    )
    _error(
        api.post("/proxies", json={"name": _name(names), "listen": "127.0.0.1:0"}),
        400,
        "missing required field: upstream",
    )
    bad = api.post("/proxies", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"].startswith("bad request body")
    for method, path in [
        ("GET", "/proxies/nope"),
        ("DELETE", "/proxies/nope"),
        ("PATCH", "/proxies/nope"),
        ("GET", "/proxies/nope/toxics"),
        ("POST", "/proxies/nope/toxics"),
    ]:
        _error(api.request(method, path, json={}), 404, "proxy not found")


def test_listen_port_in_use(api: httpx.Client, names: list[str], echo_server) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        response = api.post(
            "/proxies",
            json={
                "name": _name(names),
                "listen": f"127.0.0.1:{port}",
                "upstream": f"127.0.0.1:{echo_server[1]}",
            },
        )
    # Toxiproxy passes the Go net error through apiError, which makes it a 500.
    assert response.status_code == 500, response.text
    assert response.json()["status"] == 500
    assert "address already in use" in response.json()["error"]


def test_toxic_lifecycle_and_defaults(api: httpx.Client, names: list[str], echo_server) -> None:
    name = _name(names)
    api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{echo_server[1]}"})
    created = api.post(f"/proxies/{name}/toxics", json={"type": "latency", "attributes": {"latency": 10}})
    assert created.status_code == 200  # ToxicCreate writes no explicit 201
    toxic = created.json()
    assert toxic["name"] == "latency_downstream"
    assert toxic["stream"] == "downstream"
    assert toxic["toxicity"] == 1
    assert toxic["attributes"]["latency"] == 10 and toxic["attributes"]["jitter"] == 0

    up = api.post(
        f"/proxies/{name}/toxics",
        json={"type": "bandwidth", "stream": "upstream", "toxicity": 0.5, "attributes": {"rate": 7}},
    ).json()
    assert up["name"] == "bandwidth_upstream" and up["toxicity"] == 0.5

    listed = api.get(f"/proxies/{name}/toxics").json()
    assert {t["name"] for t in listed} == {"latency_downstream", "bandwidth_upstream"}
    assert api.get(f"/proxies/{name}").json()["toxics"] == listed
    assert api.get(f"/proxies/{name}/toxics/latency_downstream").json() == toxic

    # Update changes only attributes and toxicity; missing attributes keep their values.
    updated = api.patch(
        f"/proxies/{name}/toxics/latency_downstream",
        json={"attributes": {"jitter": 3}, "toxicity": 0.25, "stream": "upstream", "type": "timeout"},
    )
    assert updated.status_code == 200
    assert updated.json()["attributes"]["latency"] == 10 and updated.json()["attributes"]["jitter"] == 3
    assert updated.json()["toxicity"] == 0.25
    assert updated.json()["stream"] == "downstream" and updated.json()["type"] == "latency"

    deleted = api.delete(f"/proxies/{name}/toxics/latency_downstream")
    assert deleted.status_code == 204
    _error(api.get(f"/proxies/{name}/toxics/latency_downstream"), 404, "toxic not found")
    _error(api.delete(f"/proxies/{name}/toxics/latency_downstream"), 404, "toxic not found")
    _error(api.patch(f"/proxies/{name}/toxics/latency_downstream", json={}), 404, "toxic not found")


def test_toxic_errors(api: httpx.Client, names: list[str], echo_server) -> None:
    name = _name(names)
    api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{echo_server[1]}"})
    _error(api.post(f"/proxies/{name}/toxics", json={"type": "nonsense"}), 400, "invalid toxic type")
    _error(
        api.post(f"/proxies/{name}/toxics", json={"type": "latency", "stream": "sideways"}),
        400,
        "stream was invalid, can be either upstream or downstream",
    )
    assert api.post(f"/proxies/{name}/toxics", json={"type": "noop", "name": "n"}).status_code == 200
    _error(
        api.post(f"/proxies/{name}/toxics", json={"type": "latency", "name": "n"}),
        409,
        "toxic already exists",
    )


def test_populate_and_reset(api: httpx.Client, names: list[str], echo_server) -> None:
    upstream = f"127.0.0.1:{echo_server[1]}"
    a, b = _name(names), _name(names)
    populated = api.post(
        "/populate",
        json=[
            {"name": a, "listen": "127.0.0.1:0", "upstream": upstream},
            {"name": b, "listen": "127.0.0.1:0", "upstream": upstream, "enabled": False},
        ],
    )
    assert populated.status_code == 201
    proxies = {p["name"]: p for p in populated.json()["proxies"]}
    assert proxies[a]["enabled"] is True and proxies[b]["enabled"] is False

    # Same listen and upstream: left alone.
    again = api.post("/populate", json=[{"name": a, "listen": proxies[a]["listen"], "upstream": upstream}])
    assert again.status_code == 201 and again.json()["proxies"][0]["listen"] == proxies[a]["listen"]

    missing = api.post("/populate", json=[{"name": _name(names), "listen": "127.0.0.1:0"}])
    assert missing.status_code == 400
    assert missing.json()["error"].startswith("missing required field: upstream")

    api.post(f"/proxies/{a}/toxics", json={"type": "latency", "attributes": {"latency": 5}})
    api.patch(f"/proxies/{a}", json={"enabled": False})
    reset = api.post("/reset")
    assert reset.status_code == 204
    after = api.get(f"/proxies/{a}").json()
    assert after["enabled"] is True and after["toxics"] == []
    assert api.get(f"/proxies/{b}").json()["enabled"] is True  # reset re-enables every proxy


def test_unknown_route_is_404_with_request_id(api: httpx.Client) -> None:
    response = api.get("/nothing-here")
    assert response.status_code == 404
    assert response.headers.get("X-Toxiproxy-Request-Id")
