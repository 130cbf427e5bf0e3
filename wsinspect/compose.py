"""A whole proxy: the relay with the Origin policy, idle timeout, faults, breakpoints and
scripts of its settings.

The relay knows nothing of faults (``tests/test_layering.py`` keeps it so): they attach through
its hooks and command registry. The places that run a proxy (``wsinspect proxy``, the TUI's
live mode, the demo, and the tests that drive a proxy) start it here.
"""

from __future__ import annotations

import trio

from wsinspect.faults.runtime import install as install_faults
from wsinspect.hub import Hub
from wsinspect.intercept.runtime import install as install_intercept
from wsinspect.relay.hooks import Hooks
from wsinspect.relay.server import Relay, serve
from wsinspect.script.runtime import install as install_scripts
from wsinspect.settings import Settings

__all__ = ["serve_proxy"]


async def serve_proxy(
    settings: Settings,
    hub: Hub,
    *,
    hooks: Hooks | None = None,
    task_status: trio.TaskStatus[Relay] = trio.TASK_STATUS_IGNORED,
) -> None:
    """``relay.server.serve`` with the settings' faults, breakpoints and scripts attached (and
    the intercept commands registered); runs until cancelled."""
    await serve(settings, hub, hooks=hooks,
                attach=(install_faults, install_intercept, install_scripts),
                task_status=task_status)
