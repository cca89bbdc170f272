"""Everything behind `mlflow run .`: photos in, a registered and gated model version out."""
