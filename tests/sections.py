"""Sections of params.yaml as the schema models library functions take, for tests."""
import functools

from fer.core.params import compose
from fer.core.schema import Params


@functools.cache
def _paper() -> dict:
    return compose([])


def section(name: str, **overrides):
    """params.yaml's section `name` of the paper profile with `overrides`, validated."""
    return Params.model_fields[name].annotation.model_validate({**_paper()[name], **overrides})
