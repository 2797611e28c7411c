"""How many stages shared the machine while times were measured (`fer.train.parallel_repro
-j N` sets FER_CONCURRENT_STAGES)."""
import os


def concurrent_stages() -> int:
    """How many stages may have shared this machine while this one ran (1: alone)."""
    return int(os.environ.get("FER_CONCURRENT_STAGES", "1"))


def shared_note(stages: int) -> str:
    """The line that goes under a table of measured times, empty when measured alone."""
    if stages <= 1:
        return ""
    return (f"Measured with up to {stages} stages running side by side (`fer.train.parallel_repro "
            f"-j {stages}`): not single-job times; re-run these stages one at a time for "
            "figures to publish.")
