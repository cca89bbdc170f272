"""Where the project is, for tests that run its commands as a user would."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"  # screenshots and figures the tests leave for people
