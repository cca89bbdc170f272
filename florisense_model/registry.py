"""Model registry: promotion (stage AND alias), and the gate that decides if a version earns it."""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from florisense_model.config import PRODUCTION_ALIAS, PRODUCTION_STAGE, REGISTERED_MODEL_NAME

ARCHIVED_STAGE = "Archived"
PROMOTE_CHOICES = ("auto", "force", "skip")


@dataclass
class GateDecision:
    decision: str  # promoted | rejected | skipped
    reason: str
    candidate_score: float | None
    production_score: float | None
    production_version: str | None

    def tags(self, metric: str) -> dict[str, str]:
        tags = {"gate.decision": self.decision, "gate.reason": self.reason, "gate.metric": metric}
        for key, value in (
            ("gate.candidate_score", self.candidate_score),
            ("gate.production_score", self.production_score),
            ("gate.production_version", self.production_version),
        ):
            if value is not None:
                tags[key] = f"{value:.6f}" if isinstance(value, float) else str(value)
        return tags


def current_production(
    client: MlflowClient, name: str = REGISTERED_MODEL_NAME
) -> ModelVersion | None:
    """The version in stage Production (the one `models:/name/Production` serves), if any."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, still supported
        versions = client.get_latest_versions(name, stages=[PRODUCTION_STAGE])
    return versions[0] if versions else None


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


def decide(
    mode: str,
    candidate_score: float | None,
    production: ModelVersion | None,
    score_production: Callable[[ModelVersion], float],
) -> GateDecision:
    """The promotion gate: promote when at least as good as Production on the same test split."""
    if mode not in PROMOTE_CHOICES:
        raise ValueError(f"promote must be one of {PROMOTE_CHOICES}, got {mode!r}")
    prod_version = production.version if production else None
    if mode == "skip":
        return GateDecision(
            "skipped", "promotion skipped by parameter", candidate_score, None, prod_version
        )
    if mode == "force":
        return GateDecision(
            "promoted", "promotion forced by parameter", candidate_score, None, prod_version
        )
    if production is None:
        return GateDecision("promoted", "no Production version yet", candidate_score, None, None)
    if candidate_score is None:
        return GateDecision(
            "skipped", "no evaluation data to compare with Production", None, None, prod_version
        )
    try:
        production_score = score_production(production)
    except Exception as exc:  # a Production model that cannot even be scored must be replaced
        return GateDecision(
            "promoted",
            f"Production v{prod_version} could not be evaluated: {exc}",
            candidate_score,
            None,
            prod_version,
        )
    if candidate_score >= production_score:
        return GateDecision(
            "promoted",
            "at least as good as Production",
            candidate_score,
            production_score,
            prod_version,
        )
    return GateDecision(
        "rejected", "worse than Production", candidate_score, production_score, prod_version
    )


def apply_gate(
    client: MlflowClient,
    version: str,
    decision: GateDecision,
    metric: str,
    name: str = REGISTERED_MODEL_NAME,
) -> None:
    """Record the decision as tags on the version, and promote it if the gate said so."""
    for key, value in decision.tags(metric).items():
        client.set_model_version_tag(name, str(version), key, value)
    if decision.decision == "promoted":
        promote(client, version, name)
