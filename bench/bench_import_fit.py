"""FIT import benchmark: a Garmin-export-shaped folder of thousands of FIT files, imported in parallel.

Generates (once, cached under /tmp by its parameters) an unzipped Garmin
account export: ``DI_CONNECT/DI-Connect-Uploaded-Files/UploadedFiles_0-_Part1/``
holding ``--files`` FIT activity files, one a day, each with 1 Hz records of
30 to 120 minutes (timestamp, GPS, distance, heart rate, altitude, speed,
cadence), a lap, a session and the activity message.  fit-tool encodes every
message, definition, header and CRC; fit-tool's ``FitFileBuilder`` takes about
4 s per 1 Hz hour, so the files are concatenated here from its encoded
messages, and the 1 Hz records (all but the first 30 and every 300th, which
fit-tool encodes and which are checked byte for byte against ours) are
packed with the layout of fit-tool's own record definition: 0.05 s a file
instead of 1 s, identical bytes.

Then measures, each in a fresh subprocess:

* **bare**: a serial loop of bare fitdecode over the same files (read each,
  iterate every frame, CRC checks off as healthcache reads);
* **import**: ``healthcache import --jobs N`` of the folder into an empty
  workspace (wall time, with the ratio to bare; peak RSS of the parent and
  of the largest worker);
* **unchanged**: the same import again (stat + manifests, no file opened).

Usage: python bench/bench_import_fit.py [--files 3000] [--jobs N] [--seed 1]

A smaller --files reuses (hard links) the first files of a complete larger folder of the same seed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FIT_EPOCH_S = 631065600
# The record definition fit-tool writes for these fields, in its order: timestamp, position_lat,
# position_long, altitude (scale 5, offset 500), heart_rate, cadence, distance (scale 100), speed (scale 1000).
_RECORD = struct.Struct("<IiiHBBIH")
CHECKED_EVERY = 300
PART = Path("DI_CONNECT/DI-Connect-Uploaded-Files/UploadedFiles_0-_Part1")


def _ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


def fit_file(index: int, seed: int) -> bytes:
    """One activity: a run or a ride of 30 to 120 minutes at 1 Hz, with GPS, distance and heart rate."""
    from fit_tool.definition_message import DefinitionMessage
    from fit_tool.fit_file_header import FitFileHeader
    from fit_tool.profile.messages.activity_message import ActivityMessage
    from fit_tool.profile.messages.device_info_message import DeviceInfoMessage
    from fit_tool.profile.messages.event_message import EventMessage
    from fit_tool.profile.messages.file_id_message import FileIdMessage
    from fit_tool.profile.messages.lap_message import LapMessage
    from fit_tool.profile.messages.record_message import RecordMessage
    from fit_tool.profile.messages.session_message import SessionMessage
    from fit_tool.profile.profile_type import Activity, Event, EventType, FileType, Manufacturer, Sport
    from fit_tool.record import RecordHeader
    from fit_tool.utils.crc import crc16

    rng = random.Random(f"{seed}-{index}")
    ride = rng.random() < 0.3
    minutes = rng.randint(30, 120)
    speed = rng.uniform(6.0, 9.0) if ride else rng.uniform(2.6, 3.6)  # m/s
    start = datetime(2015, 1, 1, 6, 0, tzinfo=UTC) + timedelta(days=index, minutes=rng.randint(0, 600))
    lat0, lon0 = 52.52 + rng.uniform(-0.05, 0.05), 13.40 + rng.uniform(-0.05, 0.05)
    parts: list[bytes] = []

    def encoded(msg: Any) -> bytes:
        return RecordHeader.from_message(msg).to_bytes() + msg.to_bytes()  # type: ignore[no-any-return]

    def put(msg: Any) -> None:
        parts.append(encoded(DefinitionMessage.from_data_message(msg)))
        parts.append(encoded(msg))

    fid = FileIdMessage()
    fid.type = FileType.ACTIVITY
    fid.manufacturer = Manufacturer.GARMIN.value
    fid.product = 3113
    fid.serial_number = 3_900_000_000 + index
    fid.time_created = _ms(start)
    put(fid)
    di = DeviceInfoMessage()
    di.timestamp = _ms(start)
    di.manufacturer = Manufacturer.GARMIN.value
    di.product = 3113
    di.device_index = 0
    put(di)
    ev = EventMessage()
    ev.timestamp, ev.event, ev.event_type = _ms(start), Event.TIMER, EventType.START
    put(ev)
    rec = RecordMessage()
    n = minutes * 60
    dist = 0.0
    hrs: list[int] = []
    radius = speed * n / (2 * math.pi) / 111_000  # one loop, in degrees
    for i in range(n + 1):
        dist += speed * rng.uniform(0.9, 1.1) if i else 0.0
        hr = int(110 + 40 * (1 - math.exp(-i / 300)) + rng.randint(-4, 4))
        hrs.append(hr)
        angle = 2 * math.pi * i / n
        ts = _ms(start + timedelta(seconds=i))
        lat = lat0 + radius * math.sin(angle)
        lon = lon0 + radius * (1 - math.cos(angle)) * 1.6
        alt = 40 + 15 * math.sin(angle * 3)
        cad = 85 if ride else 88
        packed = b"\x00" + _RECORD.pack(
            round(ts / 1000) - FIT_EPOCH_S,
            round(lat * 2**31 / 180),
            round(lon * 2**31 / 180),
            round((alt + 500) * 5),
            hr,
            cad,
            round(dist * 100),
            round(speed * 1000),
        )
        if i < 30 or i % CHECKED_EVERY == 0:
            rec.timestamp, rec.position_lat, rec.position_long = ts, lat, lon
            rec.distance, rec.heart_rate, rec.altitude, rec.speed, rec.cadence = dist, hr, alt, speed, cad
            if i == 0:
                parts.append(encoded(DefinitionMessage.from_data_message(rec)))
            assert encoded(rec) == packed, (index, i)  # exactly what fit-tool writes
        parts.append(packed)
    end = start + timedelta(seconds=n)
    ev = EventMessage()
    ev.timestamp, ev.event, ev.event_type = _ms(end), Event.TIMER, EventType.STOP_ALL
    put(ev)
    for kind in (LapMessage, SessionMessage):
        m = kind()
        m.timestamp, m.start_time = _ms(end), _ms(start)
        m.sport = Sport.CYCLING if ride else Sport.RUNNING
        m.total_elapsed_time = m.total_timer_time = float(n)
        m.total_distance = dist
        m.total_calories = int(dist / 1000 * (25 if ride else 65))
        m.total_ascent = 30
        m.avg_heart_rate = round(sum(hrs) / len(hrs))
        m.max_heart_rate = max(hrs)
        put(m)
    act = ActivityMessage()
    act.timestamp, act.total_timer_time, act.num_sessions = _ms(end), float(n), 1
    act.type, act.event, act.event_type = Activity.MANUAL, Event.ACTIVITY, EventType.STOP
    act.local_timestamp = round(end.timestamp()) + 3600 - FIT_EPOCH_S
    put(act)
    body = b"".join(parts)
    header = FitFileHeader(records_size=len(body), gen_crc=True).to_bytes()
    return header + body + crc16(header + body).to_bytes(2, "little")


def _write_one(args: tuple[str, int, int]) -> int:
    folder, index, seed = args
    path = Path(folder) / PART / f"runner@example.com_{10_000_000_000 + index}.fit"
    data = fit_file(index, seed)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)  # a scratch benchmark file, not healthcache state
    tmp.rename(path)
    return len(data)


def generate(files: int, seed: int, jobs: int) -> Path:
    """The export folder for these parameters, generated on first use and kept under /tmp."""
    key = hashlib.sha256(f"v1-{files}-{seed}".encode()).hexdigest()[:12]
    root = Path(tempfile.gettempdir()) / f"hc-bench-fit-{key}"
    done = root / "complete"
    if done.exists():
        return root
    (root / PART).mkdir(parents=True, exist_ok=True)
    _link_from_larger(root, files, seed)
    todo = [
        (str(root), i, seed)
        for i in range(files)
        if not (root / PART / f"runner@example.com_{10_000_000_000 + i}.fit").exists()
    ]
    t = time.perf_counter()
    with ProcessPoolExecutor(jobs) as pool:
        for k, _ in enumerate(pool.map(_write_one, todo, chunksize=8), 1):
            if k % 250 == 0:
                print(f"  generated {k}/{len(todo)} in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    done.write_text(json.dumps({"files": files, "seed": seed, "generate_s": round(time.perf_counter() - t, 1)}))
    return root


def _link_from_larger(root: Path, files: int, seed: int) -> None:
    """Hard-link the files a complete larger folder of the same seed already holds (file i depends on i and seed only)."""
    for other in Path(tempfile.gettempdir()).glob("hc-bench-fit-*/complete"):
        try:
            meta = json.loads(other.read_text())
        except (OSError, ValueError):
            continue
        if meta.get("seed") != seed or meta.get("files", 0) < files or other.parent == root:
            continue
        for i in range(files):
            name = f"runner@example.com_{10_000_000_000 + i}.fit"
            if not (root / PART / name).exists():
                os.link(other.parent / PART / name, root / PART / name)
        return


# ---------------------------------------------------------------- measured children

CHILD_BARE = """
import io, os, resource, sys, time, warnings
import fitdecode
root = sys.argv[1]
paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".fit"))
t = time.perf_counter(); frames = 0
warnings.simplefilter("ignore")
for p in paths:
    with open(p, "rb") as f:
        data = f.read()
    with fitdecode.FitReader(io.BytesIO(data), check_crc=fitdecode.CrcCheck.DISABLED) as fr:
        for frame in fr:
            frames += 1
print(time.perf_counter() - t, len(paths), frames, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

CHILD_IMPORT = """
import os, resource, sys, threading, time
from pathlib import Path
from healthcache.config import Paths
from healthcache.importers.run import run_import
from healthcache.store import Store
home, root, jobs = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
peaks = {}
stop = threading.Event()

def kids(pid):
    out = []
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                stat = open(f"/proc/{e}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(e))
    return out

def sample():  # the workers' peak RSS (VmHWM), read while they live
    while not stop.wait(0.2):
        for fs in kids(os.getpid()):
            for w in [fs, *kids(fs)]:
                try:
                    for line in open(f"/proc/{w}/status"):
                        if line.startswith("VmHWM:"):
                            peaks[w] = max(peaks.get(w, 0), int(line.split()[1]))
                except OSError:
                    pass

threading.Thread(target=sample, daemon=True).start()
store = Store(Paths(home))
t = time.perf_counter()
first = run_import(store, [root], jobs=jobs)
t_first = time.perf_counter() - t
stop.set()
t = time.perf_counter()
second = run_import(store, [root], jobs=jobs)
t_second = time.perf_counter() - t
c1, c2 = first.counts(), second.counts()
assert c1["failed"] == 0 and c2["opened"] == 0, (c1, c2)
worker = max(peaks.values(), default=0)
print(t_first, t_second, c1["records"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, worker, first.jobs,
      first.timings["read"], first.timings["merge_save"])
"""


def _child(code: str, *args: str) -> list[float]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return [float(x) for x in out.stdout.split()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=3000, help="FIT files in the export (default 3000)")
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)), help="worker processes (default: cores)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t = time.perf_counter()
    root = generate(args.files, args.seed, args.jobs)
    gen_s = time.perf_counter() - t
    fits = sorted((root / PART).glob("*.fit"))
    mb = sum(p.stat().st_size for p in fits) / 2**20
    bare = _child(CHILD_BARE, str(root))
    with tempfile.TemporaryDirectory(prefix="hc-bench-fit-home-") as home:
        hc = _child(CHILD_IMPORT, home, str(root), str(args.jobs))
    row = {
        "files": len(fits),
        "MB": round(mb, 1),
        "generate_s": round(gen_s, 1),
        "bare_fitdecode_serial_s": round(bare[0], 1),
        "import_s": round(hc[0], 1),
        "import_read_s": round(hc[6], 1),
        "import_merge_save_s": round(hc[7], 1),
        "jobs": int(hc[5]),
        "ratio": round(hc[0] / bare[0], 2),
        "target_ratio": round(1.2 / int(hc[5]), 2),
        "parent_peak_rss_MB": round(hc[3] / 1024, 1),
        "worker_peak_rss_MB": round(hc[4] / 1024, 1),
        "bare_peak_rss_MB": round(bare[3] / 1024, 1),
        "unchanged_reimport_s": round(hc[1], 3),
        "activities": int(hc[2]),
    }
    print(" | ".join(row))
    print(" | ".join(str(v) for v in row.values()))
    print(json.dumps(row))


if __name__ == "__main__":
    main()
