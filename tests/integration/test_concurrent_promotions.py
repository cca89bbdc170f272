"""Promotions at the same moment, against a REAL tracking server: exactly one Production version
afterwards, the one the `production` alias names, and its promoter is told it won."""

from __future__ import annotations

import threading

import pytest
from mlflow import MlflowClient

from florisense_model.config import PRODUCTION_ALIAS, PRODUCTION_STAGE
from florisense_model.registry import promote
from tests.support.servers import mlflow_tracking_server

pytestmark = pytest.mark.integration
NAME = "race"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with mlflow_tracking_server(tmp_path_factory.mktemp("race-mlflow")) as uri:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.create_registered_model(NAME)
        for _ in range(4):  # registry entries only: the promotion never reads the files
            client.create_model_version(NAME, source="s3://bucket/models/placeholder")
        yield client


def production_state(client: MlflowClient) -> tuple[list[str], str]:
    stages = sorted(
        v.version
        for v in client.search_model_versions(f"name='{NAME}'")
        if v.current_stage == PRODUCTION_STAGE
    )
    return stages, client.get_model_version_by_alias(NAME, PRODUCTION_ALIAS).version


@pytest.mark.parametrize("round_", range(12))
def test_simultaneous_promotions_leave_exactly_one_production(client, round_):
    contenders = [str(1 + (round_ + i) % 4) for i in range(2 + round_ % 2)]  # 2 or 3 at once
    barrier = threading.Barrier(len(contenders))
    answers: dict[str, str] = {}

    def promote_one(version: str) -> None:
        barrier.wait()
        answers[version] = promote(client, version, NAME).version

    threads = [threading.Thread(target=promote_one, args=(v,)) for v in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    in_production, alias = production_state(client)
    assert in_production == [alias]
    assert alias in contenders
    # The promoter whose alias write came last is told it won. Another may have been told it
    # was Production when it returned (true then) and been superseded a moment later.
    assert answers[alias] == alias
    assert set(answers.values()) <= set(contenders)
