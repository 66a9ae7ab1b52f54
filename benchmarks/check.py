"""The benchmark's correctness check, run before any timing.

For every workload, every library's encoding must decode in Google's runtime to the message
Google builds from the same values, and savestate must decode it to the object savestate
builds; each library's reader (run in that library's own worker process, on its own bytes)
must also see the same checksum of every field. A library whose
bytes or reader disagree makes the run fail: a fast wrong answer is not a result.

For the VM's full tree (``vm-tree``) "the same values" is judged at every level: savestate
parses every blob in the bytes and must find the workload's plain values, and Google's runtime
decodes the record and every blob in it and must find, level by level, the messages it builds
from the same values (the ``Any`` slots' bytes aside, which the levels below judge). A library
that cannot run a workload (``UNSUPPORTED``, shown as n/a) has no bytes for it to check.
"""

from __future__ import annotations

from typing import Any

from . import vm, workloads

__all__ = ["CheckError", "check"]


class CheckError(AssertionError):
    """A library's output disagrees with the others."""


def check(
    encodings: dict[str, dict[str, bytes]],
    sums: dict[str, dict[str, int]],
    wls: list[workloads.Workload],
    seed: int,
    *,
    google: bool,
) -> list[str]:
    """Check ``encodings`` (library -> workload -> bytes) and ``sums`` (library -> workload ->
    the library's reader's checksum of its own bytes); returns what was checked.

    ``google`` says whether Google's runtime is installed (then it is the judge of every
    library's bytes); savestate decodes every library's bytes in any case.
    """
    from .peers import savestate_peer as ss  # whichever path this process has: either judges

    gp = None
    if google:
        from .peers import google_peer as gp  # its backend is this process's; either judges
    done: list[str] = []
    for wl in wls:
        data = workloads.make(wl, seed)
        want_ss = ss.build(wl.kind, data)
        want_sum = ss.read_all(wl.kind, want_ss)
        want_pb: Any = gp.build(wl.kind, data) if gp is not None else None
        tree = wl.kind == "vm-tree"
        if tree and gp is not None:
            gp.encode(want_pb)  # fills the Any slots, as a decoded tree has them
        for lib, by_workload in encodings.items():
            if wl.name not in by_workload:
                continue  # the library cannot run this workload (n/a in the report)
            payload = by_workload[wl.name]
            where = f"{lib} / {wl.name}"
            got_ss = ss.decode(wl.kind, payload)
            if tree:
                same = vm.to_plain(got_ss.msg) == {
                    k: v for k, v in data.items() if k != vm.TYPE_KEY}
            else:
                same = got_ss == want_ss
            if not same:
                raise CheckError(f"{where}: savestate decodes different values")
            if gp is not None:
                got_pb = gp.decode(wl.kind, payload)
                same = (vm.same_tree(gp.VM, got_pb, want_pb) if tree
                        else got_pb == want_pb)
                if not same:
                    raise CheckError(f"{where}: Google's runtime decodes different values")
            got_sum = sums[lib][wl.name]
            if got_sum != want_sum:
                raise CheckError(f"{where}: the library's own reader sums {got_sum}, "
                                 f"savestate's {want_sum}")
            done.append(where)
        del data, want_ss, want_pb
    return done
