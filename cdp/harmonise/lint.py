"""`python -m cdp.harmonise.lint [WORKSPACE]`: sqlfluff (dbt templater) over the project's models.

The dbt templater compiles the project, which needs a workspace's environment and its
generated models; the demo workspace is used unless another is named.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cdp.harmonise.dbt_env import DBT_PROJECT_DIR, dbt_env, generated_dir, prepare, run_dbt
from cdp.workspace import resolve_workspace


def lint(workspace: str | None = None) -> int:
    ws = resolve_workspace(workspace)
    prepare(ws)
    # Models that read a seed while they compile need its table: a workspace that never
    # ran has none, and sqlfluff would skip those models with a warning.
    run_dbt(ws, ["seed", "--quiet"])
    sqlfluff = Path(sys.executable).parent / "sqlfluff"
    proc = subprocess.run(
        [str(sqlfluff), "lint", str(DBT_PROJECT_DIR / "models")],
        # The package's project, with this workspace's generated models by absolute path
        # (sqlfluff compiles in memory; it writes no SQL files over them), and absolute
        # paths into the workspace: sqlfluff runs dbt from another folder.
        env={
            **os.environ,
            **dbt_env(ws, relative=False),
            "CDP_DBT_GENERATED": str(generated_dir(ws)),
        },
        cwd=DBT_PROJECT_DIR.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    print(proc.stdout, end="")
    skipped = [line for line in proc.stdout.splitlines() if "Skipped file" in line]
    if skipped:  # sqlfluff exits 0 on a file it could not compile: not linted, not passed
        print(f"lint: {len(skipped)} file(s) not linted (dbt could not compile them)")
        return 1
    return proc.returncode


if __name__ == "__main__":
    sys.exit(lint(sys.argv[1] if len(sys.argv) > 1 else None))
