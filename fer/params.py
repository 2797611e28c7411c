"""params.yaml: read it (stages) and compose it from conf/ (as `dvc exp run` does).

Stages never use @hydra.main: DVC composes conf/ into params.yaml before each
`dvc exp run` (applying -S overrides), and the stages read that file.

  python -m fer.params                 # params.yaml from conf/ defaults (profile=paper)
  python -m fer.params profile=demo    # the demo profile
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def load_params(path="params.yaml") -> dict:
    """The composed parameters; stages run from the repository root, as DVC runs them."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run `python -m fer.params` to compose it")
    with open(path) as f:
        return yaml.safe_load(f)


def compose(overrides=(), output=None, config_dir=None) -> dict:
    """Compose conf/ with Hydra overrides exactly as DVC does; optionally write it."""
    import tempfile

    from dvc.utils.hydra import compose_and_dump

    config_dir = str(Path(config_dir or ROOT / "conf").resolve())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(output) if output else Path(tmp) / "params.yaml"
        compose_and_dump(out, config_dir, None, "config", str(Path(tmp) / "plugins"),
                         list(overrides))
        return yaml.safe_load(out.read_text())


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    params = compose(argv, output=ROOT / "params.yaml")
    print(f"params.yaml composed from conf/ (profile={params['profile']['name']}; "
          f"overrides: {' '.join(argv) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
