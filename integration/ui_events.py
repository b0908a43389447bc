"""Messages to the ComfyUI frontend: each finished run's summary, shown on the TAPE Patch Model node that made it
(web/tape_summary.js). A no-op outside a running ComfyUI server (scripts, tests without a server)."""

from __future__ import annotations

import logging

log = logging.getLogger("TAPE")

EVENT = "tape.summary"


def prompt_server():
    """The running ComfyUI server, or None (scripts, tests without a server)."""
    try:
        from server import PromptServer
    except ImportError:
        return None
    return getattr(PromptServer, "instance", None)


def run_finished(node_id: str | None, record, hint: str | None = None) -> None:
    server = prompt_server() if node_id is not None else None
    if server is None:
        return
    data = {"node": str(node_id), "text": record.summary, "warning": hint, **record.stats}
    try:
        server.send_sync(EVENT, data, server.client_id)
    except Exception as e:  # the UI message must never fail a finished run
        log.debug("TAPE: could not send the summary to the frontend: %s", e)
