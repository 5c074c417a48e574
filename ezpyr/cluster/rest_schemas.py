"""The JSON shapes of the cluster page's actions over the REST API
(``ezpyr/cluster/rest.py``), described in the OpenAPI document. Not to be
confused with ``ezpyr/cluster/schemas.py``: the bodies the two nodes send
each other."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ezpyr.api.schemas import Strict

Side = Literal["here", "there"]


class ClusterOut(BaseModel):
    node: dict
    other_node: dict | None
    status: str
    split_brain: bool
    backlog: int
    backlog_unsent: int
    backlog_queued: int
    lag_seconds: float | None
    warnings: list[str] = []

    @classmethod
    def of(cls, state: dict) -> dict:
        """The cluster's state (``ClusterService.state().as_dict()``) as JSON data."""
        return cls(**{key: state.get(key) for key in cls.model_fields}).model_dump(mode="json")


class AddIn(Strict):
    address: str = Field(max_length=255, description="host:port of the secondary's panel")
    setup_key: str = Field(max_length=255, description="the one-time key the secondary printed at install")


class MakeMasterIn(Strict):
    force: bool = Field(False, description="take over although the master does not answer: send it after "
                                           "a first try's job result asked for confirmation")


class ResolveIn(Strict):
    verify_job: str = Field(max_length=36, description="the job id of a finished Verify run during the "
                                                       "split-brain: its differing rows are decided")
    keep: Side | None = Field(None, description="the side to keep for every differing row")
    tables: dict[str, Side] = Field(default_factory=dict,
                                    description="table -> the side to keep for its rows (wins over keep)")
    rows: dict[str, dict[str, Side]] = Field(default_factory=dict,
                                             description="table -> row id -> the side to keep (wins over tables)")


class LostOut(BaseModel):
    table: str
    id: str
    kept: Side
    lost: dict = Field(description="the version the choice drops")


class ResolvePreviewOut(BaseModel):
    decided: int = Field(description="differing rows decided")
    lost: list[LostOut]
