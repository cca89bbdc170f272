"""The loop around the model: versioned datasets in S3, the retraining flow and its triggers."""
