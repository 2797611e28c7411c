import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_stage_times_splits_wall_time_at_dvc_stage_lines_and_keeps_the_exit_status():
    script = ("import time; print('Verifying data sources'); time.sleep(0.2); "
              "print(\"Running stage 'crop@kdef':\"); time.sleep(0.6); "
              "print(\"Stage 'augment' didn't change, skipping\"); "
              "print(\"Running stage 'merge':\"); time.sleep(0.3); raise SystemExit(3)")
    p = subprocess.run([sys.executable, ROOT / "bench/stage_times.py", sys.executable, "-c",
                        script], capture_output=True, text=True, timeout=60)
    assert p.returncode == 3
    assert "Stage 'augment' didn't change, skipping" in p.stdout      # passed through
    out = json.loads(p.stdout[p.stdout.index("{"):])
    assert list(out["stages_s"]) == ["crop@kdef", "merge"]
    assert 0.55 <= out["stages_s"]["crop@kdef"] < 2 and 0.25 <= out["stages_s"]["merge"] < 2
    assert out["total_s"] >= 1.0 and out["returncode"] == 3
