"""The result of verifying a packet: one :class:`CheckResult` per FORMATS section 4 check."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from catalog.digest import DigestSet


class CheckResult(BaseModel):
    """One named check: ``pass``, ``fail`` (with the place) or ``skip`` (not run)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    name: str
    status: Literal["pass", "fail", "skip"]
    detail: str
    where: str = ""
    expected: str | None = None
    actual: str | None = None


class VerifyReport(BaseModel):
    """Every check in FORMATS order, with the packet id and the computed manifest hash."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    checks: tuple[CheckResult, ...]
    packet_id: str | None
    manifest_hash: DigestSet | None

    @property
    def ok(self) -> bool:
        return all(check.status != "fail" for check in self.checks)

    def check(self, name: str) -> CheckResult:
        return next(check for check in self.checks if check.name == name)

    def summary(self) -> str:
        """One line, e.g. ``6/6 checks passed, 2 skipped``, naming a failure's check and place."""
        passed = sum(check.status == "pass" for check in self.checks)
        failed = [check for check in self.checks if check.status == "fail"]
        skipped = sum(check.status == "skip" for check in self.checks)
        text = f"{passed}/{passed + len(failed)} checks passed"
        if skipped:
            text += f", {skipped} skipped"
        for check in failed:
            text += f"; {check.name} failed at {check.where or '(packet)'}"
        return text

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form: ``ok``, ``summary`` and every field."""
        return {"ok": self.ok, "summary": self.summary(), **self.model_dump(mode="json")}
