"""The engine's hold on the edge: HAProxy's runtime API, over its admin socket.

`drain` stops new requests from reaching a server while the ones in flight finish;
`maint` takes it out altogether (its health checks stop too, so a restarting instance
is never marked DOWN and logged as an outage); `ready` brings it back, and HAProxy's own
checks (rise) decide when it really takes traffic again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ..catalog import Instance
from ..proxy import ServerState, backend_name, server_state, set_server_state
from ._rollout import Counters


class HaproxyEdge:
    def __init__(self, admin_socket: Path) -> None:
        self.admin_socket = admin_socket

    async def _state(self, instance: Instance) -> ServerState:
        return await asyncio.to_thread(server_state, self.admin_socket, backend_name(instance.service),
                                       instance.name)

    async def _set(self, instance: Instance, state: str) -> None:
        await asyncio.to_thread(set_server_state, self.admin_socket, backend_name(instance.service),
                                instance.name, state)

    async def drain(self, instance: Instance) -> None:
        await self._set(instance, "drain")

    async def maintenance(self, instance: Instance) -> None:
        await self._set(instance, "maint")

    async def ready(self, instance: Instance) -> None:
        await self._set(instance, "ready")

    async def in_flight(self, instance: Instance) -> int:
        return (await self._state(instance)).current_sessions

    async def is_up(self, instance: Instance) -> bool:
        return (await self._state(instance)).up

    async def counters(self, instance: Instance) -> Counters:
        state = await self._state(instance)
        return Counters(state.responses, state.errors)
