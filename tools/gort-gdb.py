# gort-gdb.py - gdb commands for gort programs (Go's runtime-gdb.py for gort).
#
#   gdb -x tools/gort-gdb.py PROGRAM
#   (gdb) info goroutines        every live goroutine: id, state / wait reason,
#                                locked or dedicated, and where a parked one
#                                stopped
#   (gdb) goroutine N bt         the backtrace of goroutine N: a parked one is
#                                unwound from its saved context (the switch
#                                frame of src/arch/ctx.h); a running one is
#                                shown through the thread that runs it
#
# Works on a live process or a core file of a program linked with gort (the
# static or the shared library, with debug information for gort's types).
# x86-64 and aarch64.

import gdb

STATUS = {0: "idle", 1: "runnable", 2: "running", 3: "syscall", 4: "waiting", 6: "dead"}


def _arch():
    name = gdb.selected_frame().architecture().name()
    return "aarch64" if "aarch64" in name else "x86-64"


def _goroutines():
    g = gdb.parse_and_eval("gort__rt.allgs")
    while int(g) != 0:
        yield g
        g = g["alllink"]


def _status(g):
    return int(g["atomicstatus"])


def _waitreason(g):
    try:
        s = gdb.parse_and_eval("gort__waitreason_strings")[int(g["waitreason"])]
        return s.string()
    except gdb.error:
        return ""


def _saved_regs(g):
    """(sp, fp, pc) a parked goroutine resumes with."""
    sp = int(g["sched_sp"])
    ptr = gdb.lookup_type("unsigned long").pointer()
    mem = lambda a: int(gdb.Value(a).cast(ptr).dereference())
    if _arch() == "aarch64":
        return sp + 176, mem(sp + 80), mem(sp + 88)
    return sp + 64, mem(sp + 48), mem(sp + 56)


def _fn_name(pc):
    """The name of the function at pc, or its address."""
    blk = gdb.block_for_pc(pc)
    # The innermost block may be a lexical block of an inlined body: its
    # function is the nearest enclosing one that has one.
    while blk is not None and blk.function is None:
        blk = blk.superblock
    return blk.function.name if blk is not None else "0x%x" % pc


def _describe(g):
    st = _status(g)
    what = STATUS.get(st, "?")
    if st == 4 and _waitreason(g):
        what = _waitreason(g)
    extra = []
    if int(g["lockedm"]) != 0:
        extra.append("locked to thread")
    if bool(g["dedicated"]):
        extra.append("dedicated thread")
    if bool(g["is_main"]):
        extra.append("main")
    return "goroutine %d [%s]%s" % (int(g["goid"]), what, (", " + ", ".join(extra)) if extra else "")


class InfoGoroutines(gdb.Command):
    """info goroutines: list gort's goroutines."""

    def __init__(self):
        super().__init__("info goroutines", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        for g in _goroutines():
            st = _status(g)
            if st in (0, 6):
                continue
            line = _describe(g)
            if st == 1 and int(g["sched_sp"]) == 0:
                # Never run: its first frame is made when it first runs.
                line += "  not started, will run %s" % _fn_name(int(g["fn"]))
            elif st in (1, 4) and int(g["sched_sp"]) != 0:
                _, _, pc = _saved_regs(g)
                line += "  %s (0x%x)" % (_fn_name(pc), pc)
            elif st in (2, 3) and int(g["m"]) != 0:
                line += "  on thread %d" % int(g["m"]["procid"])
            print(line)


class GoroutineCmd(gdb.Command):
    """goroutine N CMD: run CMD (e.g. bt) in goroutine N's context."""

    def __init__(self):
        super().__init__("goroutine", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        args = arg.split(None, 1)
        if len(args) != 2:
            raise gdb.GdbError("usage: goroutine N CMD")
        goid, cmd = int(args[0]), args[1]
        for g in _goroutines():
            if int(g["goid"]) == goid and _status(g) not in (0, 6):
                break
        else:
            raise gdb.GdbError("no goroutine %d" % goid)
        print(_describe(g))
        st = _status(g)
        if st in (2, 3):
            tid = int(g["m"]["procid"])
            for t in gdb.selected_inferior().threads():
                if t.ptid[1] == tid:
                    old = gdb.selected_thread()
                    t.switch()
                    try:
                        gdb.execute(cmd)
                    finally:
                        old.switch()
                    return
            raise gdb.GdbError("thread %d of goroutine %d not found" % (tid, goid))
        if int(g["sched_sp"]) == 0:
            print("not started yet: no stack to show; it will run %s" % _fn_name(int(g["fn"])))
            return
        sp, fp, pc = _saved_regs(g)
        regs = ("$sp", "$x29", "$pc") if _arch() == "aarch64" else ("$rsp", "$rbp", "$rip")
        gdb.execute("select-frame 0")
        saved = [int(gdb.parse_and_eval(r)) for r in regs]
        try:
            for r, v in zip(regs, (sp, fp, pc)):
                gdb.execute("set %s = %d" % (r, v))
            gdb.execute(cmd)
        finally:
            gdb.execute("select-frame 0")
            for r, v in zip(regs, saved):
                gdb.execute("set %s = %d" % (r, v))


InfoGoroutines()
GoroutineCmd()
print("gort: 'info goroutines' and 'goroutine N bt' are available")
