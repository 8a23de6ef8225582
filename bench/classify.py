#!/usr/bin/env python3
"""Where a server's CPU time goes, from the profiles bench/run.sh takes (BENCH_PROFILE=DIR).

  python3 bench/classify.py BINARY DIR/d.pprof            # Go CPU profile (pprof plugin)
  python3 bench/classify.py --perf DIR/d.perf.data        # perf record -g (any server)

Each sample goes to the first category whose rule matches a frame of its stack, so the
categories add up to 100%. The cross-cutting runtime costs come first (a stack growth
inside the unpack counts as stack growth), then the phases of a query.
"""
import re
import subprocess
import sys
from collections import Counter

# (category, regex over one frame's function name); first match over the rules wins.
GO_RULES = [
    ("scheduler, idle, netpoll", r"^runtime\.(schedule|findRunnable|park_m|mcall|gopark|goschedImpl|netpoll|notesleep|stopm|startm|wakep|handoffp|sysmon|futex|usleep|entersyscallblock|exitsyscall|mPark|runqgrab|stealWork|checkTimers|goready|ready|injectglist)\b"),
    ("syscalls: send (sendmsg)", r"(WriteToSessionUDP|WriteMsgUDP|\(\*UDPConn\)\.writeMsg|\(\*FD\)\.WriteMsg|\(\*response\)\.Write)"),
    ("syscalls: receive (recvmsg)", r"(ReadFromSessionUDP|ReadMsgUDP|\(\*UDPConn\)\.readMsg|\(\*FD\)\.ReadMsg|readUDP)"),
    ("goroutine stack growth", r"^runtime\.(newstack|morestack|copystack|morestack_noctxt)\b"),
    ("goroutine creation and exit", r"^runtime\.(newproc|newproc1|goexit0|goexit1|gfget|gfput|malg|gdestroy|casgstatus)\b"),
    ("GC (mark, assist, sweep)", r"^runtime\.(gcBgMarkWorker|gcAssistAlloc|gcDrain|markroot|scanobject|scanstack|bgsweep|sweepone|bgscavenge|gcStart|gcMarkDone|gcMarkTermination|wbBufFlush|gcWriteBarrier|deductSweepCredit|\(\*mheap\)\.reclaim|scanObject|greyobject)"),
    ("syscalls: other", r"(Syscall6?|RawSyscall|syscall\.|internal/runtime/syscall)"),
    ("unpack the query", r"miekg/dns\.\(\*Msg\)\.(Unpack|unpack)\b"),
    ("scrub (Truncate, Len)", r"miekg/dns\.\(\*Msg\)\.(Truncate|Len)\b|request\.\(\*Request\)\.Scrub"),
    ("pack the reply", r"miekg/dns\.\(\*Msg\)\.(Pack|PackBuffer)\b"),
    ("gtm (decision, geo, answer)", r"coredns-gtm/(plugin|geo|policy)\.|oschwald/maxminddb"),
    ("CoreDNS server and plugin chain", r"coredns/core/dnsserver|coredns/coredns/plugin|coredns/coredns/request|miekg/dns"),
    ("malloc elsewhere", r"^runtime\.mallocgc"),
]


def pprof_samples(binary, path):
    out = subprocess.run(["go", "tool", "pprof", "-traces", binary, path],
                         capture_output=True, text=True, check=True).stdout
    blocks = out.split("-----------+-------------------------------------------------------")
    for b in blocks:
        lines = [l for l in b.splitlines() if l.strip()]
        if not lines:
            continue
        m = re.match(r"\s*([0-9.]+)(ns|us|µs|ms|s)\s+(.*)", lines[0])
        if not m:
            continue
        v = float(m.group(1)) * {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1}[m.group(2)]
        frames = [m.group(3).strip()] + [l.strip() for l in lines[1:]]
        yield v, frames


def classify(frames, rules):
    for name, rx in rules:
        r = re.compile(rx)
        if any(r.search(f) for f in frames):
            return name
    return "other"


# perf script: kernel and user frames. Kernel frames first: what the kernel does for the
# process (its syscalls, softirqs); then the process's own code.
PERF_KERNEL = [
    ("kernel: send (sendmsg/sendmmsg)", r"(__sys_sendmsg|__sys_sendmmsg|udp_sendmsg|__x64_sys_sendmsg|__x64_sys_sendmmsg|__x64_sys_sendto)"),
    ("kernel: receive (recvmsg/recvmmsg)", r"(__sys_recvmsg|__sys_recvmmsg|udp_recvmsg|__x64_sys_recvmsg|__x64_sys_recvmmsg|__x64_sys_recvfrom)"),
    ("kernel: scheduler, futex, epoll", r"(schedule|futex|epoll|do_nanosleep|__x64_sys_sched_yield|finish_task_switch)"),
    ("kernel: other", r"."),
]


def perf_samples(path):
    out = subprocess.run(["perf", "script", "-i", path, "-F", "ip,sym,dso"],
                         capture_output=True, text=True).stdout
    for block in out.split("\n\n"):
        frames = []
        for l in block.splitlines():
            p = l.strip().split(None, 1)
            if len(p) < 2:
                continue
            frames.append(p[1])
        if frames:
            yield 1, frames


def perf_classify(frames):
    kernel = [f for f in frames if "kernel.kallsyms" in f]
    if kernel and "kernel.kallsyms" in frames[0]:
        return classify(kernel, PERF_KERNEL)
    user = [re.sub(r"\+0x[0-9a-f]+", "", f.split(" (")[0]) for f in frames]
    dso = frames[0].split(" (")[-1] if " (" in frames[0] else ""
    if any("runtime." in f or "miekg" in f or "coredns" in f for f in user):
        return "user: " + classify(user, GO_RULES)
    if "libc" in dso:
        return "user: libc"
    if "gdnsd" in dso or "plugin_" in dso:
        if any(re.search(r"geoip|dcmap|nlist|ntree|gdmaps", f) for f in user):
            return "user: gdnsd geoip map lookup"
        if any(re.search(r"weighted|plugin_weighted", f) for f in user):
            return "user: gdnsd weighted resolve"
        if any(re.search(r"process_dns_query|dnspacket|encode_rr|answer_from_db|process_query|ltree|dname|parse_", f) for f in user):
            return "user: gdnsd packet decode, lookup, encode"
        return "user: gdnsd other"
    return "user: other (" + dso + ")"


def main():
    args = sys.argv[1:]
    counts = Counter()
    if args[0] == "--perf":
        for v, frames in perf_samples(args[1]):
            counts[perf_classify(frames)] += v
    else:
        for v, frames in pprof_samples(args[0], args[1]):
            counts[classify(frames, GO_RULES)] += v
    total = sum(counts.values())
    print("| where | share |")
    print("|---|---|")
    for k, v in counts.most_common():
        print(f"| {k} | {100 * v / total:.1f}% |")
    print(f"| (samples) | {total:.2f}{'' if args[0] == '--perf' else ' s'} |")


if __name__ == "__main__":
    main()
