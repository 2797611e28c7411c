"""Per-stage wall time of a `dvc repro` (or any command printing DVC's
"Running stage '<name>':" lines): runs the command, passes its output through, and
prints the seconds from each stage's line to the next (the last to the command's end)
as JSON. Exits with the command's status.
Usage: python bench/stage_times.py dvc repro [args...]
"""
import json
import re
import subprocess
import sys
import time

STAGE = re.compile(r"^Running stage '([^']+)'")


def main(cmd: list) -> int:
    start = time.perf_counter()
    times, current, since = {}, None, start
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as p:
        for line in p.stdout:
            sys.stdout.write(line)
            m = STAGE.match(line)
            if m:
                now = time.perf_counter()
                if current:
                    times[current] = round(now - since, 1)
                current, since = m.group(1), now
    end = time.perf_counter()
    if current:
        times[current] = round(end - since, 1)
    print(json.dumps({"command": " ".join(cmd), "returncode": p.returncode,
                      "total_s": round(end - start, 1), "stages_s": times}, indent=1))
    return p.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
