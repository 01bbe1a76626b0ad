"""Dependencies shared by routes: the services container and the caller's organization."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from heliograph.domain.keys import Identity
from heliograph.services.container import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_identity(request: Request, services: ServicesDep) -> Identity:
    identity = await services.verifier.verify(request.headers.get("Authorization"))
    if identity is None:
        raise HTTPException(401, "missing or invalid Authorization header (Bearer <key>)")
    return identity


IdentityDep = Annotated[Identity, Depends(get_identity)]
