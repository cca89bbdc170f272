"""Model registry: which version is Production, and promotion (stage AND alias) settled so that
exactly one version is Production even when promotions race."""

from __future__ import annotations

import random
import re
import time
import urllib.request
import warnings

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from florisense_model.config import PRODUCTION_ALIAS, PRODUCTION_STAGE, REGISTERED_MODEL_NAME

ARCHIVED_STAGE = "Archived"


def version_in_stage(client: MlflowClient, name: str, stage: str) -> ModelVersion | None:
    """The newest version in `stage` (what `models:/name/Stage` resolves to), if any."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, still supported
        versions = client.get_latest_versions(name, stages=[stage])
    return versions[0] if versions else None


def current_production(
    client: MlflowClient, name: str = REGISTERED_MODEL_NAME
) -> ModelVersion | None:
    """The version in stage Production (the one `models:/name/Production` serves), if any; None
    also before the model's first version is registered."""
    try:
        return version_in_stage(client, name, PRODUCTION_STAGE)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def production_version(tracking_uri: str) -> str | None:
    """The Production version number of the tracking server at `tracking_uri`, None if there is
    none yet; OSError at once if the server is down (MLflow's client would retry for minutes)."""
    with urllib.request.urlopen(f"{tracking_uri}/health", timeout=5):
        pass
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    version = current_production(client)
    return version.version if version else None


def version_of(client: MlflowClient, model_uri: str) -> tuple[str, str] | None:
    """(name, version) for models:/name/N, models:/name/Stage and models:/name@alias URIs;
    None for other URIs (runs:/, a folder) or a stage no version is in."""
    match = re.fullmatch(r"models:/([^/@]+)(?:/([^/]+)|@(.+))", model_uri)
    if not match:
        return None
    name, reference, alias = match.groups()
    if alias:
        return name, client.get_model_version_by_alias(name, alias).version
    if reference.isdigit():
        return name, reference
    found = version_in_stage(client, name, reference)
    return (name, found.version) if found else None


def promote(client: MlflowClient, version: str, name: str = REGISTERED_MODEL_NAME) -> ModelVersion:
    """Make `version` Production (stage and alias) and return the version that IS Production
    afterwards: another promotion at the same moment may win (see settle_production)."""
    client.get_model_version(name, str(version))  # clear error for an unknown version
    _set_stage(client, name, str(version), PRODUCTION_STAGE, archive_others=True)
    client.set_registered_model_alias(name, PRODUCTION_ALIAS, str(version))
    return settle_production(client, name)


def settle_production(
    client: MlflowClient, name: str = REGISTERED_MODEL_NAME, attempts: int = 20
) -> ModelVersion:
    """Bring the stages in line with the `production` alias: exactly one version in stage
    Production, the alias's target.

    MLflow has no lock: two promotions at once can both archive "the others" before either is
    Production, leaving two Production versions (measured: 5 of 15 concurrent pairs) and an alias
    that disagrees. The alias is one key, so the last alias write wins; every promoter settles on
    it and leaves only after a read shows the settled state, so the final state is settled too.
    """
    for attempt in range(attempts):
        target = client.get_model_version_by_alias(name, PRODUCTION_ALIAS).version
        in_production = sorted(
            v.version
            for v in client.search_model_versions(f"name='{name}'")
            if v.current_stage == PRODUCTION_STAGE
        )
        if in_production == [target]:
            return client.get_model_version(name, target)
        if target not in in_production:
            _set_stage(client, name, target, PRODUCTION_STAGE, archive_others=False)
        for other in in_production:
            if other != target:
                _set_stage(client, name, other, ARCHIVED_STAGE, archive_others=False)
        time.sleep(random.uniform(0.02, 0.1) * (attempt + 1))  # let a concurrent promoter finish
    raise RuntimeError(
        f"the registry did not settle on one Production version of {name} after {attempts} "
        "attempts: are promotions running in a loop?"
    )


def _set_stage(
    client: MlflowClient, name: str, version: str, stage: str, archive_others: bool
) -> ModelVersion:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, still supported
        return client.transition_model_version_stage(
            name, version, stage, archive_existing_versions=archive_others
        )
