"""The FloriSense stack on one machine, without Docker: the S3 server, the MLflow tracking server,
the model server(s), nginx and the follower as plain processes, one job per module."""
