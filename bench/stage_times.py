"""Per-stage wall time of a `dvc repro` (or any command printing DVC's
"Running stage '<name>':" lines): runs the command, passes its output through, and
prints the seconds from each stage's line to the next (the last to the command's end)
as JSON (also to FILE with --save FILE, which bench/cell_overhead.py reads). Exits with
the command's status. `make demo` runs `python -m fer.train.parallel_repro`, which writes the
same JSON itself (plus each stage's start and end, and how many ran at a time).
Usage: python bench/stage_times.py [--save FILE] dvc repro [args...]
"""
import json
import re
import subprocess
import sys
import time

STAGE = re.compile(r"^Running stage '([^']+)'")


def main(cmd: list, save=None) -> int:
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
    text = json.dumps({"command": " ".join(cmd), "returncode": p.returncode,
                       "total_s": round(end - start, 1), "stages_s": times}, indent=1)
    print(text)
    if save:
        with open(save, "w") as f:
            f.write(text + "\n")
    return p.returncode


if __name__ == "__main__":
    args = sys.argv[1:]
    save = None
    if args[:1] == ["--save"]:
        if len(args) < 3:
            sys.exit("usage: python bench/stage_times.py [--save FILE] COMMAND [ARGS...]")
        save, args = args[1], args[2:]
    sys.exit(main(args, save))
