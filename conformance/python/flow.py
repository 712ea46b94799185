"""The conformance rows of the official Python SDK (``anthropic``), reusing the core SDK flow.

    FILESAPI_BASE_URL=... FILESAPI_API_KEY=... python conformance/python/flow.py ga|beta

Runs ``tests/sdk_programs/python_flow.py`` (the flow ``tests/test_python_sdk.py`` runs) one phase at a
time with whatever ``anthropic`` this interpreter has, and turns the flow's progress lines into the
suite's ``RESULT <operation> PASS|FAIL <detail>`` lines. The workspace is emptied between phases so a
failing phase does not spill into the next. The server must run in open mode (the flow checks 401
by sending no key, and makes scoped files through the admin endpoint with its own key).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FLOW_FILE = ROOT / "tests" / "sdk_programs" / "python_flow.py"

UPLOAD_OPS = ["upload_bytes", "upload_path", "upload_named"]
# A failure message of the uploads step names the upload that failed (see python_flow.Flow.uploads).
UPLOAD_FAILURES = [
    ("upload raw bytes", "upload_bytes"),
    ("upload pathlib.Path", "upload_path"),
    ("upload open file", "upload_path"),
    ("upload (name, bytes, mime) tuple", "upload_named"),
]


def load_flow_module() -> Any:
    spec = importlib.util.spec_from_file_location("python_flow", FLOW_FILE)
    assert spec is not None and spec.loader is not None, FLOW_FILE
    module = importlib.util.module_from_spec(spec)
    sys.modules["python_flow"] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Step:
    prefix: str  # how the flow's progress line for this step starts
    ops: list[str]


@dataclass
class Outcome:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


def describe(op: str, line: str) -> str:
    """The part of the uploads line about this op's upload(s) ("uploads: raw bytes -> ..., ...")."""
    if op not in UPLOAD_OPS or not line.startswith("uploads: "):
        return line
    kinds = {
        "upload_bytes": ("raw bytes",),
        "upload_path": ("pathlib.Path", "open file"),
        "upload_named": ("tuple",),
    }
    parts = [p for p in line.removeprefix("uploads: ").split(", ") if p.startswith(kinds[op])]
    return ", ".join(parts) or line


def phases(flow: Any) -> list[tuple[str, Callable[[], None], list[Step]]]:
    """The flow's phases, each with the progress lines it prints in order and what they prove."""
    uploads = [
        Step("uploads:", UPLOAD_OPS),
        Step("retrieve_metadata matches every upload", ["metadata", "download"]),
        Step("streamed download byte-identical", ["download"]),
    ]
    if flow.has_ids:
        uploads.append(Step("list(ids=[...])", ["list_ids"]))
    uploads.append(Step("delete -> DeletedFile", ["delete"]))
    paging = [
        Step("auto-pagination:", ["list_autopage"]),
        Step("default page size 20", ["list_autopage"]),
    ]
    if flow.cursor_style == "after_id":
        paging += [
            Step("manual after_id=last_id paging", ["list_manual"]),
            Step("going back with before_id=first_id", ["list_manual"]),
            Step("auto-pagination starting at before_id", ["list_autopage"]),
            Step("after_id/before_id are keysets", ["list_manual"]),
        ]
    else:
        paging += [
            Step("manual paging with page=next_page", ["list_manual"]),
            Step("next_page cursors are keysets", ["list_manual"]),
        ]
    out: list[tuple[str, Callable[[], None], list[Step]]] = [("uploads", flow.uploads, uploads)]
    if flow.has_expiry:
        out.append(("expiry", flow.expiry, [Step("expires_in_seconds ->", ["expires_in_seconds"])]))
    out.append(("paging", flow.paging, paging))
    out.append(
        (
            "errors",
            flow.errors,
            [
                Step("unknown ids", ["error_404"]),
                Step("limit 0/1001/-1", ["error_400"]),
                Step("no API key header", ["error_401"]),
            ],
        )
    )
    if flow.is_beta and flow.has_scope_filter:
        out.append(("scopes", flow.scopes, [Step("scope_id filter", ["list_scope"])]))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("ga", "beta"):
        print(__doc__, file=sys.stderr)
        return 2
    name = argv[0]
    base_url, api_key = os.environ.get("FILESAPI_BASE_URL"), os.environ.get("FILESAPI_API_KEY")
    if not base_url or not api_key:
        print("set FILESAPI_BASE_URL and FILESAPI_API_KEY", file=sys.stderr)
        return 2

    pf = load_flow_module()
    anthropic = pf.anthropic
    print(f"SDK python {anthropic.__version__} {name} (Python {sys.version.split()[0]})", flush=True)
    client = anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=0, timeout=60)
    resource = client.files if name == "ga" else client.beta.files

    details: dict[str, list[str]] = {}
    failures: dict[str, str] = {}
    blocked: dict[str, str] = {}
    seen: list[str] = []

    with tempfile.TemporaryDirectory(prefix="filesapi-py-") as tmp:
        flow = pf.Flow(name, client, resource, base_url, api_key, Path(tmp))

        def record(message: str) -> None:
            seen.append(message)
            print(f"# ok {message}", flush=True)

        flow.step = record
        for phase, run, steps in phases(flow):
            seen.clear()
            error: str | None = None
            try:
                leftovers = flow.list_all()
                pf.check(
                    not leftovers, f"the workspace holds {len(leftovers)} files before the {phase} phase"
                )
                run()
            except pf.CheckFailed as exc:
                error = str(exc)
            except anthropic.APIStatusError as exc:
                error = (
                    f"unexpected {type(exc).__name__} {exc.status_code} from {exc.request.method} "
                    f"{exc.request.url}: {exc.body}"
                )
            except Exception as exc:
                error = f"unexpected {exc!r} at {traceback.format_exc(limit=-2).strip()}"
            # Match the progress lines to the steps, in order.
            index = 0
            for step in steps:
                if index < len(seen) and seen[index].startswith(step.prefix):
                    for op in step.ops:
                        details.setdefault(op, []).append(describe(op, seen[index]))
                    index += 1
                    continue
                # The first step without its line is where the phase stopped.
                if error is None:
                    reason = f"python_flow.py no longer prints a line starting {step.prefix!r} in {phase}"
                    for op in step.ops:
                        failures.setdefault(op, reason)
                elif step.ops == UPLOAD_OPS:
                    hit = next((op for prefix, op in UPLOAD_FAILURES if error.startswith(prefix)), None)
                    for op in UPLOAD_OPS:
                        if hit is None or op == hit:
                            failures.setdefault(op, error)
                        elif UPLOAD_OPS.index(op) < UPLOAD_OPS.index(hit):
                            details.setdefault(op, []).append("uploaded and checked before the failure")
                        else:
                            blocked.setdefault(op, f"not reached: {error}")
                else:
                    for op in step.ops:
                        failures.setdefault(op, error)
                for later in steps[steps.index(step) + 1 :]:
                    for op in later.ops:
                        if op not in failures:
                            blocked.setdefault(
                                op, f"not reached: an earlier check of the {phase} phase failed"
                            )
                break
            # Empty the workspace for the next phase whatever happened.
            try:
                for item in flow.list_all():
                    resource.delete(item.id)
            except Exception as exc:
                print(f"# cleanup after {phase} failed: {exc!r}", flush=True)

    ops = []
    for op in [
        *UPLOAD_OPS,
        "metadata",
        "download",
        "list_autopage",
        "list_manual",
        "list_ids",
        "expires_in_seconds",
        "list_scope",
        "error_404",
        "error_400",
        "error_401",
        "delete",
    ]:
        if op in failures:
            ops.append((op, "FAIL", failures[op]))
        elif op in blocked:
            ops.append((op, "FAIL", blocked[op]))
        elif op in details:
            ops.append((op, "PASS", "; ".join(dict.fromkeys(details[op]))))
    for op, status, detail in ops:
        print(f"RESULT {op} {status} {' '.join(detail.split())[:600]}", flush=True)
    return 0 if all(status == "PASS" for _, status, _ in ops) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
