"""What the endpoints get from the app: the one Workspace, set by create_app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from aekit.dashboard.workspace import Workspace


def workspace(request: Request) -> Workspace:
    return request.app.state.workspace


WorkspaceDep = Annotated[Workspace, Depends(workspace)]
