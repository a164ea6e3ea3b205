"""The small h11 server: keep-alive, limits, bad requests and handler bugs."""

from __future__ import annotations

import asyncio

import httpx

from structlog.testing import capture_logs

from alertd.hostcheck import HostCheck
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


def test_idle_connections_are_closed_and_make_room_for_new_ones():
    async def scenario(server):
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
        closed = await asyncio.wait_for(idle_reader.read(), 5)  # idle_timeout closes it
        idle_writer.close()
        held_reader, held = await asyncio.open_connection("127.0.0.1", server.port)
        await asyncio.sleep(0.05)  # let the server accept the first connection
        served = await raw(server.port, b"GET /hello/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        shed = await asyncio.wait_for(held_reader.read(), 5)  # it made room: closed
        held.close()
        return closed, served, shed

    closed, served, shed = run(scenario, idle_timeout=2, max_connections=1)
    assert closed == b""
    assert served.startswith(b"HTTP/1.1 200 ") and shed == b""


def test_slow_connections_cannot_lock_out_the_server():
    """Connections trickling a header line now and then (slowloris) hold slots only until
    a new connection needs one, and each request's head has a deadline, not each read."""
    async def scenario(server):
        slow = []
        for _ in range(8):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /hello/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append((reader, writer))
        await asyncio.sleep(0.05)
        answers = [await raw(server.port, b"GET /hello/fast HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") for _ in range(3)]
        # one more, trickling a header line every 0.1 s: within idle_timeout per read, but
        # its head is not complete after head_timeout
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        started = asyncio.get_running_loop().time()
        async def trickle():
            for i in range(100):
                writer.write(b"X-Slow-%d: 1\r\n" % i)
                await asyncio.sleep(0.1)
        trickling = asyncio.create_task(trickle())
        closed = await asyncio.wait_for(reader.read(), 10)
        held_for = asyncio.get_running_loop().time() - started
        trickling.cancel()
        for _, w in slow:
            w.close()
        writer.close()
        return answers, closed, held_for, server.slots.shed

    answers, closed, held_for, shed = run(scenario, idle_timeout=5, head_timeout=0.5, max_connections=4)
    assert all(a.startswith(b"HTTP/1.1 200 ") for a in answers)
    assert shed >= 4  # the slow ones made room
    assert closed == b"" and held_for < 3  # cut at head_timeout, not after 100 lines


def test_when_every_slot_is_answering_a_newcomer_gets_503():
    release = asyncio.Event()

    async def scenario(server):
        async def wait(request):
            await release.wait()
            return Response.json({"done": True})
        server.app.add("GET", "/wait", wait)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /wait HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await asyncio.sleep(0.1)
        refused = await raw(server.port, b"GET /hello/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        release.set()
        answer = await reader.readuntil(b"}")
        writer.close()
        return refused, answer

    refused, answer = run(scenario, max_connections=1)
    assert refused.startswith(b"HTTP/1.1 503 ") and b"too many connections" in refused
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_host_and_origin_are_checked_against_dns_rebinding_and_cross_site_writes():
    async def scenario(server):
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base) as client:
            out = {
                "ip": await client.get("/hello/a"),
                "localhost": await client.get("/hello/a", headers={"Host": f"localhost:{server.port}"}),
                "rebound": await client.get("/hello/a", headers={"Host": f"evil.example:{server.port}"}),
                "listed": await client.get("/hello/a", headers={"Host": "alertd.shop.example"}),
                "listed_wildcard": await client.get("/hello/a", headers={"Host": "a.ops.example"}),
                "cross_site_post": await client.post("/echo", json={}, headers={"Origin": "https://evil.example"}),
                "null_origin_post": await client.post("/echo", json={}, headers={"Origin": "null"}),
                "same_origin_post": await client.post("/echo", json={"x": 1}, headers={"Origin": base}),
                "listed_origin_post": await client.post("/echo", json={}, headers={"Origin": "https://a.ops.example"}),
                "no_origin_post": await client.post("/echo", json={"y": 2}),
                "cross_site_get": await client.get("/hello/a", headers={"Origin": "https://evil.example"}),
            }
        return {k: (r.status_code, r.json()) for k, r in out.items()}

    with capture_logs() as logs:
        got = run(scenario, hosts=HostCheck(["alertd.shop.example", "*.ops.example"], "127.0.0.1"))
    assert {k: status for k, (status, _) in got.items()} == {
        "ip": 200, "localhost": 200, "rebound": 403, "listed": 200, "listed_wildcard": 200,
        "cross_site_post": 403, "null_origin_post": 403, "same_origin_post": 200, "listed_origin_post": 200,
        "no_origin_post": 200, "cross_site_get": 200}
    assert "is not a name this server answers to (a guard against DNS rebinding); if it is this machine's, " \
        "add it to http.allowed_hosts" in got["rebound"][1]["error"]
    assert 'a request from the web page at "https://evil.example" may not change anything here' in \
        got["cross_site_post"][1]["error"]
    refused = [e for e in logs if e["event"] == "http_request_refused"]
    assert len(refused) == 2  # one line per cause and minute, however many requests
