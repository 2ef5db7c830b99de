"""Lets anomalib 0.7.0 import on Python 3.11 with Debian's torch 1.13.1.

Python 3.11 refuses a dataclass field whose default is an unhashable object ("mutable
default ... use default_factory"). torch 1.13's torch.distributed._shard (imported by
pytorch-lightning) and timm 0.6.12's maxxvit (imported by anomalib; anomalib 0.7.0 pins
timm <= 0.6.12) both declare such fields, so neither imports. Their upstream fixes turn the
default into a default_factory; this shim does the same at class-creation time, for the
fields Python rejects, and changes nothing else. Import it before torch or anomalib.
"""

import copy
import dataclasses

_get_field = dataclasses._get_field


def _get_field_py311(cls, name, typ, kw_only):
    try:
        return _get_field(cls, name, typ, kw_only)
    except ValueError as err:
        if "mutable default" not in str(err):
            raise
    value = cls.__dict__[name]
    if isinstance(value, dataclasses.Field):
        default = value.default
        value.default = dataclasses.MISSING
        value.default_factory = lambda d=default: copy.deepcopy(d)
    else:
        setattr(cls, name, dataclasses.field(default_factory=lambda d=value: copy.deepcopy(d)))
    return _get_field(cls, name, typ, kw_only)


dataclasses._get_field = _get_field_py311
