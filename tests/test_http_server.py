"""The small h11 server: keep-alive, limits, bad requests and handler bugs."""

from __future__ import annotations

import asyncio

import httpx

from alertd.http.server import HttpError, HttpServer, Response, Routes
from alertd.log import get_logger


def app():
    router = Routes()
    router.add("GET", "/hello/{name}", lambda req: Response.json({"hello": req.params["name"],
                                                                  "q": req.query.get("q")}))
    router.add("POST", "/echo", lambda req: Response.json(req.json()))

    async def slow(req):
        await asyncio.sleep(0)
        raise HttpError(418, "short and stout", {"X-Teapot": "yes"})

    router.add("GET", "/teapot", slow)
    router.add("GET", "/bug", lambda req: 1 / 0)
    return router


def run(scenario, **kwargs):
    async def main():
        server = HttpServer(app(), "127.0.0.1", 0, get_logger(), **kwargs)
        await server.start()
        try:
            return await scenario(server)
        finally:
            await server.close()
    return asyncio.run(main())


async def raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


def test_routes_params_json_keep_alive_and_handler_errors():
    async def scenario(server):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            hello = await client.get("/hello/w%C3%B6rld?q=1")
            echo = await client.post("/echo", json={"a": [1, 2]})
            bad_json = await client.post("/echo", content=b"{nope")
            teapot = await client.get("/teapot")
            bug = await client.get("/bug")
            after_bug = await client.get("/hello/again")
            connections = len(server._connections)
        return hello, echo, bad_json, teapot, bug, after_bug, connections

    hello, echo, bad_json, teapot, bug, after_bug, connections = run(scenario)
    assert hello.json() == {"hello": "wörld", "q": "1"}
    assert echo.json() == {"a": [1, 2]}
    assert bad_json.status_code == 400 and bad_json.json()["error"].startswith("the request body is not valid JSON")
    assert teapot.status_code == 418 and teapot.headers["x-teapot"] == "yes"
    assert bug.status_code == 500 and "http_handler_failed" in bug.json()["error"]
    assert after_bug.status_code == 200
    assert connections == 1  # all requests went over one kept-alive connection


def test_too_large_bodies_and_garbage_are_refused_with_one_sentence():
    async def scenario(server):
        big = await raw(server.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        garbage = await raw(server.port, b"\x16\x03\x01 hello there\r\n\r\n")
        return big, garbage

    big, garbage = run(scenario, max_body=1000)
    assert big.startswith(b"HTTP/1.1 413 ") and b"larger than 1000 bytes" in big
    assert garbage.startswith(b"HTTP/1.1 400 ") and b"bad request" in garbage


def test_idle_connections_are_closed_and_too_many_are_refused():
    async def scenario(server):
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
        closed = await asyncio.wait_for(idle_reader.read(), 5)  # idle_timeout closes it
        idle_writer.close()
        _, held = await asyncio.open_connection("127.0.0.1", server.port)
        await asyncio.sleep(0.05)  # let the server accept the first connection
        refused = await raw(server.port, b"GET /hello/x HTTP/1.1\r\nHost: x\r\n\r\n")
        held.close()
        return closed, refused

    closed, refused = run(scenario, idle_timeout=0.2, max_connections=1)
    assert closed == b""
    assert refused.startswith(b"HTTP/1.1 503 ") and b"too many connections" in refused
