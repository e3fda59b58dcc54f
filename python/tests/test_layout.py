"""The ctypes mirror (baracuda/_capi.py) against the C headers: a C program compiled from
include/baracuda prints every struct's size and every field's offset."""
import ctypes as C
import os
import shutil
import subprocess

import pytest

from baracuda import _capi

INCLUDE = os.path.join(os.path.dirname(__file__), "..", "..", "include")


def _structs():
    """Every ctypes struct of _capi that mirrors a C type, by C name."""
    found = {}
    for value in list(vars(_capi).values()) + list(_capi.PLANS.values()):
        if isinstance(value, type) and issubclass(value, C.Structure) and value.__name__.startswith("bk_"):
            found[value.__name__] = value
    return found


@pytest.mark.skipif(shutil.which("cc") is None or not os.path.isdir(INCLUDE),
                    reason="needs a C compiler and the repository's include/ directory")
def test_struct_layout(tmp_path):
    structs = _structs()
    assert len(structs) >= 30
    lines = ['#include "baracuda/baracuda.h"', "#include <stddef.h>", "#include <stdio.h>", "int main(void) {"]
    want = []
    for name, st in sorted(structs.items()):
        lines.append('printf("%%zu\\n", sizeof(%s));' % name)
        want.append("%s size %d" % (name, C.sizeof(st)))
        for field, _ in st._fields_:
            lines.append('printf("%%zu\\n", offsetof(%s, %s));' % (name, field))
            want.append("%s.%s offset %d" % (name, field, getattr(st, field).offset))
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run(["cc", "-std=c11", "-I", INCLUDE, str(src), "-o", str(exe)], check=True)
    got = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    for line, value in zip(want, got):
        assert line.rsplit(" ", 1)[1] == value, "%s, C says %s" % (line, value)
    assert len(got) == len(want)
