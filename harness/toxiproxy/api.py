"""Toxiproxy's HTTP API (api.go) on aiohttp: same routes, status codes, bodies and headers."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..webguard import Gate
from .proxy import ApiError, ProxyCollection, decode_json

log = logging.getLogger(__name__)

VERSION = "2.12.0-routechaos"
COLLECTION: web.AppKey[ProxyCollection] = web.AppKey("collection", ProxyCollection)
GATE: web.AppKey[Gate] = web.AppKey("gate", Gate)
_B32 = "0123456789abcdefghijklmnopqrstuv"


def _request_id() -> str:
    """A 20-character id in the alphabet of the xid ids Toxiproxy's hlog middleware sends."""
    return "".join(_B32[b & 31] for b in secrets.token_bytes(20))


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(obj).encode(), status=status, content_type="application/json")


def _error(exc: ApiError) -> web.Response:
    return web.Response(
        body=(json.dumps(exc.to_json()) + "\n").encode(), status=exc.status, content_type="application/json"
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response: web.StreamResponse
    refusal = request.app[GATE].check_request(request)
    if refusal is not None and refusal.message == "User agent not allowed":
        # Toxiproxy 2.1.2: browsers may not drive the API (DNS rebinding / CSRF); byte-exact
        response = web.Response(status=403, text="User agent not allowed\n")
    elif refusal is not None:  # what a web page sends besides its user agent: refused too
        log.warning("toxiproxy API: refused %s from %s: %s", request.method, request.remote, refusal.message)
        response = _error(ApiError(refusal.message, refusal.status))
    else:
        try:
            response = await handler(request)
        except ApiError as exc:
            response = _error(exc)
        except web.HTTPNotFound:
            response = web.Response(status=404, text="404 page not found\n")
        except web.HTTPMethodNotAllowed:
            response = web.Response(status=405)
        except web.HTTPException as exc:
            response = web.Response(status=exc.status, text=exc.text or "")
        except Exception as exc:
            log.exception("toxiproxy API: %s %s failed", request.method, request.path)
            response = _error(ApiError(str(exc), 500))
    response.headers["X-Toxiproxy-Request-Id"] = _request_id()
    return response


def _collection(request: web.Request) -> ProxyCollection:
    return request.app[COLLECTION]


async def proxy_index(request: web.Request) -> web.Response:
    return _json({name: p.to_json() for name, p in _collection(request).proxies.items()})


async def proxy_create(request: web.Request) -> web.Response:
    obj = decode_json(await request.read(), dict)
    proxy = await _collection(request).create(obj)
    return _json(proxy.to_json(), status=201)


async def populate(request: web.Request) -> web.Response:
    items = decode_json(await request.read(), list)
    proxies, err = await _collection(request).populate(items)
    body: dict[str, Any] = {"proxies": [p.to_json() for p in proxies]}
    if err is not None:
        body = {**err.to_json(), **body}
    return _json(body, status=err.status if err else 201)


async def proxy_show(request: web.Request) -> web.Response:
    return _json(_collection(request).get(request.match_info["proxy"]).to_json())


async def proxy_update(request: web.Request) -> web.Response:
    collection = _collection(request)
    collection.get(request.match_info["proxy"])  # 404 before 400, like api.go
    obj = decode_json(await request.read(), dict)
    proxy = await collection.update(request.match_info["proxy"], obj)
    return _json(proxy.to_json())


async def proxy_delete(request: web.Request) -> web.Response:
    await _collection(request).delete(request.match_info["proxy"])
    return web.Response(status=204)


async def toxic_index(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return _json([spec.to_json() for spec in proxy.all_toxics()])


async def toxic_create(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    obj = decode_json(await request.read(), dict)
    return _json(proxy.add_toxic_json(obj).to_json())  # 200, not 201: ToxicCreate writes no status


async def toxic_show(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return _json(proxy.get_toxic(request.match_info["toxic"]).to_json())


async def toxic_update(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    proxy.get_toxic(request.match_info["toxic"])
    obj = decode_json(await request.read(), dict)
    return _json(proxy.update_toxic_json(request.match_info["toxic"], obj).to_json())


async def toxic_delete(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    proxy.remove_toxic(request.match_info["toxic"])
    return web.Response(status=204)


async def reset(request: web.Request) -> web.Response:
    await _collection(request).reset()
    return web.Response(status=204)


async def version(request: web.Request) -> web.Response:
    return web.Response(
        body=json.dumps({"version": VERSION}).encode() + b"\n",
        headers={"Content-Type": "application/json;charset=utf-8"},
    )


def make_app(collection: ProxyCollection, gate: Gate | None = None) -> web.Application:
    """The aiohttp application serving ``collection`` with Toxiproxy's routes; ``gate`` (bound
    by the server once it listens) refuses what a web page can send."""
    app = web.Application(middlewares=[_middleware], client_max_size=4 * 1024 * 1024)
    app[COLLECTION] = collection
    app[GATE] = gate if gate is not None else Gate()
    r = app.router
    r.add_post("/reset", reset)
    r.add_get("/proxies", proxy_index, allow_head=False)
    r.add_post("/proxies", proxy_create)
    r.add_post("/populate", populate)
    r.add_get("/proxies/{proxy}", proxy_show, allow_head=False)
    r.add_post("/proxies/{proxy}", proxy_update)
    r.add_patch("/proxies/{proxy}", proxy_update)
    r.add_delete("/proxies/{proxy}", proxy_delete)
    r.add_get("/proxies/{proxy}/toxics", toxic_index, allow_head=False)
    r.add_post("/proxies/{proxy}/toxics", toxic_create)
    r.add_get("/proxies/{proxy}/toxics/{toxic}", toxic_show, allow_head=False)
    r.add_post("/proxies/{proxy}/toxics/{toxic}", toxic_update)
    r.add_patch("/proxies/{proxy}/toxics/{toxic}", toxic_update)
    r.add_delete("/proxies/{proxy}/toxics/{toxic}", toxic_delete)
    r.add_get("/version", version, allow_head=False)
    return app
