#!/bin/sh
# One-shot setup of a databourse stack, safe to run again (compose runs it on every `up`):
#   1. the bucket of DATABOURSE_STORE_ROOT, when that is an s3:// root;
#   2. the `databourse` work pool (type process, served by the databourse worker: `bourse
#      worker`), unless it exists (a Kubernetes pool of that name, see deploy/k8s/, is left
#      as it is);
#   3. the deployments of deploy/prefect.yaml (created or updated in place);
#   4. each provider's concurrency limit and the zombie-run automation, before any run needs them.
# Needs PREFECT_API_URL, and DATABOURSE_HOME: the folder holding flows/, configs/ and deploy/.
set -eu
cd "${DATABOURSE_HOME:?set DATABOURSE_HOME to the folder holding flows/ and deploy/}"

case "${DATABOURSE_STORE_ROOT:-}" in
s3://*)
    python - <<'PYTHON'
"""Create the store's bucket if it is missing (endpoint and region as the pipeline sees them)."""
from botocore.exceptions import ClientError

from databourse.config import load_config
from databourse.storage.store import s3_client

cfg = load_config()
bucket = cfg.store_root.removeprefix("s3://").split("/", 1)[0]
client = s3_client(cfg.s3_endpoint_url, cfg.settings.storage.region)
try:
    client.head_bucket(Bucket=bucket)
    print(f"bucket {bucket} exists")
except ClientError:
    client.create_bucket(Bucket=bucket)
    print(f"created bucket {bucket}")
PYTHON
    ;;
esac

if prefect --no-prompt work-pool inspect databourse >/dev/null 2>&1; then
    echo "work pool databourse exists"
else
    prefect --no-prompt work-pool create databourse --type process
fi

prefect --no-prompt deploy --prefect-file deploy/prefect.yaml --all

python - <<'PYTHON'
"""Provider concurrency limits and the "a run stopped beating" automation (both idempotent)."""
from bourse.automations import ensure_zombie
from tasks.limits import ensure_provider_limits

for name, limit in ensure_provider_limits.fn().items():
    print(f"concurrency limit {name} = {limit}")
print(ensure_zombie() or "zombie-run automation exists")
PYTHON
