"""HTTP routes the pack's frontend extensions read (web/): GET /tape/estimate."""

import logging

from ..integration.estimate import REFERENCE, block_speedup
from ..integration.ui_events import prompt_server
from ..tape_core import BudgetSchedule
from ..tape_core.schedule import parse_ratio_list

log = logging.getLogger("TAPE")


def estimate_response(query) -> dict:
    """keep_ratio, steps and the Budget Schedule's widgets -> {"ratios", "block_speedup", "reference"} or {"error"}."""
    try:
        keep = float(query.get("keep_ratio", 0.5))
        steps = max(1, min(1000, int(query.get("steps", 20))))
        preset = query.get("preset", "linear")
        custom = parse_ratio_list(query.get("custom_ratios", "")) if preset == "custom" else ()
        schedule = BudgetSchedule(
            preset,
            float(query.get("spread", 0.2)),
            int(query.get("warmup_steps", 1)),
            int(query.get("dense_last_steps", 0)),
            custom,
            float(query.get("warmup_keep", 1.0)),
        )
        ratios, speedup = block_speedup(keep, schedule, steps)
    except (ValueError, TypeError) as e:
        return {"error": str(e)}
    return {"ratios": ratios, "block_speedup": speedup, "reference": REFERENCE}


def register_routes() -> None:
    server = prompt_server()
    if server is None:
        return
    from aiohttp import web

    @server.routes.get("/tape/estimate")
    async def tape_estimate(request):
        return web.json_response(estimate_response(request.rel_url.query))
