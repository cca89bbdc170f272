"""Model registry: promotion (stage AND alias), and the gate that decides if a version earns it."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from florisense_model.config import PRODUCTION_ALIAS, PRODUCTION_STAGE, REGISTERED_MODEL_NAME

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
    """Make `version` Production: stage Production (archiving the previous one) and alias."""
    client.get_model_version(name, str(version))  # clear error for an unknown version
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        promoted = client.transition_model_version_stage(
            name, str(version), PRODUCTION_STAGE, archive_existing_versions=True
        )
    client.set_registered_model_alias(name, PRODUCTION_ALIAS, str(version))
    return promoted


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
