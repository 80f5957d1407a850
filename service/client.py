"""A small Python client of a running govex service, on httpx: call, wait, download, verify.

    from service.client import GovexClient

    with GovexClient("http://127.0.0.1:8000", token) as govex:
        call = govex.call("invoices.unpaid", {"tenant": "acme"})
        done = govex.wait(call["call_id"])
        report = govex.verify(done["packet_id"], "invoice.zip")

Every answer is the service's JSON (``CallResponse`` or ``CallStatus``, see
``/openapi.json``). A refusal raises :class:`GovexProblem` holding the RFC 9457
problem. Verification is done here, offline, by the same code as ``govex packet verify``,
pinned to the manifest hash the service reported: the download is not trusted.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import httpx

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from types import TracebackType

    from service.packets.report import VerifyReport

JsonDict = dict[str, Any]
_DONE = frozenset({"completed", "failed"})
_CHUNK = 1 << 20


class GovexProblem(Exception):
    """The service refused or failed a request: ``problem`` is its RFC 9457 body."""

    def __init__(self, status: int, problem: JsonDict) -> None:
        detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
        super().__init__(f"[{problem.get('code', status)}] {detail}")
        self.status = status
        self.problem = problem

    @property
    def code(self) -> str:
        return str(self.problem.get("code", ""))


class GovexTimeout(Exception):
    """A call did not end within the time the caller was willing to wait."""


class GovexClient:
    """One service, one credential. ``http`` is for tests and custom transports."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float = 60.0,
        http: httpx.Client | None = None,
    ) -> None:
        self._http = http or httpx.Client(base_url=base_url, timeout=timeout_s)
        self._owns_http = http is None
        self._headers = {"Authorization": f"Bearer {token}"}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # --- calls ---------------------------------------------------------------------------

    def call(
        self,
        entry: str,
        params: Mapping[str, object] | None = None,
        *,
        fmt: str = "jsonl",
        dry_run: bool = False,
        respond_async: bool = False,
        wait_s: float | None = None,
        idempotency_key: str | None = None,
    ) -> JsonDict:
        """``POST /v1/calls``: the result (ended in time, or a dry run) or the call's status."""
        headers = dict(self._headers)
        prefer = [p for p in ("respond-async" if respond_async else "",) if p]
        if wait_s is not None:
            prefer.append(f"wait={wait_s:g}")
        if prefer:
            headers["Prefer"] = ", ".join(prefer)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        body = {
            "entry": entry,
            "params": dict(params or {}),
            "mode": "dry_run" if dry_run else "run",
            "format": fmt,
        }
        return self._json(self._http.post("/v1/calls", json=body, headers=headers))

    def status(self, call_id: str) -> JsonDict:
        """``GET /v1/calls/{id}``."""
        return self._json(self._http.get(f"/v1/calls/{call_id}", headers=self._headers))

    def cancel(self, call_id: str) -> JsonDict:
        """``DELETE /v1/calls/{id}``: the call's status (ended, or ending)."""
        return self._json(self._http.delete(f"/v1/calls/{call_id}", headers=self._headers))

    def calls(self, **filters: str | int) -> Iterator[JsonDict]:
        """``GET /v1/calls`` with ``filters``, every page in turn, newest first.

        Filters: entry, principal, verdict, state, since, limit (the page size).
        """
        url: str | None = "/v1/calls"
        params: Mapping[str, str | int] | None = filters
        while url is not None:
            page = self._json(self._http.get(url, params=params, headers=self._headers))
            yield from page["calls"]
            url, params = page["next"], None

    def wait(
        self,
        call_id: str,
        *,
        timeout_s: float = 3600.0,
        on_progress: Callable[[JsonDict], None] | None = None,
    ) -> JsonDict:
        """Follow the call's events until it has ended; its final status.

        ``on_progress`` gets each status as it changes. Raises :class:`GovexTimeout` past
        ``timeout_s``; a dropped stream is resumed from the call's status.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status(call_id)
            if status["state"] in _DONE:
                return status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GovexTimeout(f"call {call_id} still {status['state']} after {timeout_s:g} s")
            try:
                self._follow(call_id, remaining, on_progress)
            except httpx.TransportError:
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def _follow(
        self, call_id: str, timeout_s: float, on_progress: Callable[[JsonDict], None] | None
    ) -> None:
        timeout = httpx.Timeout(timeout_s, connect=10.0)
        with self._http.stream(
            "GET", f"/v1/calls/{call_id}/events", headers=self._headers, timeout=timeout
        ) as response:
            if response.status_code >= 400:  # noqa: PLR2004 - HTTP error classes
                response.read()
                self._json(response)
            event = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "state" and on_progress is not None:
                    on_progress(json.loads(line.removeprefix("data: ")))
                elif line.startswith("data: ") and event == "end":
                    return

    # --- packets -------------------------------------------------------------------------

    def download(self, packet_id: str, dest: str | os.PathLike[str]) -> Path:
        """Stream the packet zip to ``dest`` (written beside it, then renamed: never partial)."""
        target = Path(dest)
        with self._http.stream(
            "GET", f"/v1/packets/{packet_id}", headers=self._headers
        ) as response:
            if response.status_code >= 400:  # noqa: PLR2004 - HTTP error classes
                response.read()
                self._json(response)
            fd, partial = tempfile.mkstemp(prefix=".download-", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    for block in response.iter_bytes(_CHUNK):
                        out.write(block)
                Path(partial).replace(target)
            except BaseException:
                Path(partial).unlink(missing_ok=True)
                raise
        return target

    def verify(
        self, call_id_or_status: str | JsonDict, dest: str | os.PathLike[str]
    ) -> VerifyReport:
        """Download a call's packet to ``dest`` and verify it offline, pinned to its manifest hash.

        Takes a call id or its status; the hash the service reported when the call ended is
        the one enforced, so a packet swapped in transit or at rest fails ``manifest_hash``.
        """
        from service.packets.verify import verify_packet_file  # noqa: PLC0415 - heavy

        status = (
            self.status(call_id_or_status)
            if isinstance(call_id_or_status, str)
            else call_id_or_status
        )
        packet_id, manifest = status.get("packet_id"), status.get("manifest_hash")
        if not packet_id or not manifest:
            raise GovexProblem(
                409,
                {
                    "code": "no_packet",
                    "detail": f"call {status.get('call_id')} has no packet "
                    f"({status.get('state')}, verdict {status.get('verdict')})",
                },
            )
        path = self.download(packet_id, dest)
        return verify_packet_file(path, expect_manifest_hash=f"sha256:{manifest['sha256']}")

    # --- plumbing ------------------------------------------------------------------------

    @staticmethod
    def _json(response: httpx.Response) -> JsonDict:
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text[:500] or f"HTTP {response.status_code}"}
        if response.status_code >= 400:  # noqa: PLR2004 - HTTP error classes
            raise GovexProblem(response.status_code, body)
        result: JsonDict = body
        return result
