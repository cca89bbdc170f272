"""The artifact bucket on the stack's S3 server, through the S3 API (boto3)."""

from __future__ import annotations

import os
from typing import Any

from florisense_model.stack.credentials import s3_credentials
from florisense_model.stack.settings import ARTIFACT_BUCKET, StackConfig


def s3_client(config: StackConfig) -> Any:
    import boto3  # only the stack's own tools talk to S3 directly

    key, secret = s3_credentials(config)
    return boto3.client(
        "s3",
        # FLORISENSE_S3_URL: the S3 server as seen from a container (compose: http://minio:9000).
        endpoint_url=os.environ.get("FLORISENSE_S3_URL") or config.s3_url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        # MinIO and rclone take any region; AWS signs per region (external S3).
        region_name=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    )


def ensure_bucket(config: StackConfig, bucket: str = ARTIFACT_BUCKET) -> str:
    """Create `bucket` (default: the artifact bucket) if it does not exist yet."""
    from botocore.exceptions import ClientError

    try:
        s3_client(config).create_bucket(Bucket=bucket)
        return f"s3: bucket {bucket} created"
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou"):
            return f"s3: bucket {bucket} ready"
        raise
