"""LiteLLM's proxy as the peer in gateway benchmarks: started from a Python that has
`litellm[proxy]` installed (its own venv; never a dependency of Heliograph), one worker, pointed
at the same fake provider as Heliograph, with no database, no Redis and the bundled cost map.

    python3 -m venv /tmp/litellm && /tmp/litellm/bin/pip install 'litellm[proxy]==1.108.7'
    python bench/unified.py --litellm-python /tmp/litellm/bin/python
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

PINNED = "1.108.7"  # the version `../shared/reference/stack-bench.md` measured
MASTER_KEY = "sk-litellm-bench-master"  # LiteLLM refuses to start without one


def litellm_version(python: str) -> str:
    """The litellm version installed for `python`, or "" when there is none."""
    found = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    )
    return found.stdout.strip() if found.returncode == 0 else ""


def start_litellm(
    python: str, upstream_origin: str, port: int, workdir: Path
) -> subprocess.Popen[bytes]:
    """LiteLLM's proxy on 127.0.0.1:`port`, serving `gpt-4o-mini` from the OpenAI-shaped fake at
    `upstream_origin`."""
    config = {
        "model_list": [
            {
                "model_name": "gpt-4o-mini",
                "litellm_params": {
                    "model": "openai/gpt-4o-mini",
                    "api_base": f"{upstream_origin}/v1",
                    "api_key": "sk-bench",
                },
            }
        ],
        "general_settings": {"master_key": MASTER_KEY},
    }
    path = workdir / "litellm.json"  # YAML is a superset of JSON: LiteLLM reads it as is
    path.write_text(json.dumps(config))
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    # The `litellm` command beside the given Python (its package has no `__main__`).
    command = str(Path(python).with_name("litellm"))
    argv = [command, "--config", str(path), "--port", str(port)]
    return subprocess.Popen(
        [*argv, "--host", "127.0.0.1", "--num_workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def litellm_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
