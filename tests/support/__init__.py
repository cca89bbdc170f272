"""What the tests share: generated photos, real servers, HTTP helpers, a tiny model, `mlflow run`.
Test modules import from here, never from each other."""
