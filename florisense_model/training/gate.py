"""The promotion gate: a new version becomes Production only if it is at least as good as the
current one on the same test photos. `decide` is pure (its inputs passed in); `run_gate` gathers
them, records the decision on the version and promotes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from florisense_model import registry
from florisense_model.training.config import PROMOTE_CHOICES
from florisense_model.training.evaluation import GATE_METRIC, score_model_uri


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
    name: str,
) -> None:
    """Record the decision as tags on the version, and promote it if the gate said so."""
    for key, value in decision.tags(metric).items():
        client.set_model_version_tag(name, str(version), key, value)
    if decision.decision == "promoted":
        registry.promote(client, version, name)


def run_gate(
    name: str,
    version: str,
    promote: str,
    candidate_score: float | None,
    test_files: list[tuple[Path, str]],
    classes: list[str],
) -> GateDecision:
    """Compare `version` with the current Production on the same (file, label) test photos;
    record the decision on the version and promote it if it won."""
    client = MlflowClient()
    production = registry.current_production(client, name)
    if production is not None and production.version == version:
        production = None

    def score(prod: ModelVersion) -> float:
        files, labels = [path for path, _ in test_files], [label for _, label in test_files]
        return score_model_uri(f"models:/{name}/{prod.version}", files, labels, classes)

    decision = decide(promote, candidate_score, production, score)
    apply_gate(client, version, decision, GATE_METRIC, name)
    print(f"== gate: version {version} {decision.decision} ({decision.reason})", flush=True)
    return decision
