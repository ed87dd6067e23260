"""Read a W&B run file (`run-<id>.wandb`) back with wandb's own protobuf classes.

The file is W&B's append-only log: a 7-byte header (":W&B", magic 0xBEE1, version), then 32 KiB blocks
of chunks framed as in LevelDB's log (crc32 u32, length u16, type u8: 1 full, 2 first, 3 middle,
4 last; a block tail shorter than a chunk header is zero padding). Each whole payload is one
`wandb_internal_pb2.Record`.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK, HEADER = 32768, 7


def read_records(path: str | Path) -> list[pb.Record]:
    data = Path(path).read_bytes()
    ident, magic, _version = struct.unpack("<4sHB", data[:HEADER])
    assert ident == b":W&B" and magic == 0xBEE1, f"{path} is not a W&B run file"
    records, pos, payload = [], HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # block trailer
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0:  # zero padding up to the block end
            pos += left
            continue
        if pos + HEADER + length > len(data):
            break  # a chunk still being written
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        payload = chunk if kind in (1, 2) else payload + chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(payload)
            records.append(rec)
    return records


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


@dataclass
class RunRecord:
    """What a dashboard shows of one run file: run settings, metric definitions, history rows, summary."""

    run: pb.RunRecord | None = None
    config: dict = field(default_factory=dict)
    metrics: list[pb.MetricRecord] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)  # one dict per row: key -> decoded JSON value
    summary: dict = field(default_factory=dict)

    def glob(self, name: str) -> pb.MetricRecord:
        """The last definition of glob `name` (a later definition replaces an earlier one)."""
        return [m for m in self.metrics if m.glob_name == name][-1]

    def metric(self, name: str) -> pb.MetricRecord:
        return [m for m in self.metrics if m.name == name][-1]


def read_run(path: str | Path, timeout: float = 60.0) -> RunRecord:
    """The run file once it is complete: W&B's service writes it asynchronously, so a finished run's
    last records (its exit record among them) can land a few seconds after `finish()` returned."""
    deadline = time.monotonic() + timeout
    records = read_records(path)
    while not any(r.WhichOneof("record_type") == "exit" for r in records):
        assert time.monotonic() < deadline, f"{path} has no exit record after {timeout} s"
        time.sleep(0.2)
        records = read_records(path)
    out = RunRecord()
    for rec in records:
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out.run = rec.run
            for item in rec.run.config.update:
                out.config[_key(item)] = json.loads(item.value_json)
        elif kind == "config":
            for item in rec.config.update:
                out.config[_key(item)] = json.loads(item.value_json)
        elif kind == "metric":
            out.metrics.append(rec.metric)
        elif kind == "history":
            out.history.append({_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            for item in rec.summary.update:
                out.summary[_key(item)] = json.loads(item.value_json)
    return out


def run_files(out_dir: str | Path) -> list[Path]:
    """The run files of every `offline-run-*` folder under `<out_dir>/wandb`, oldest first."""
    return sorted(Path(out_dir, "wandb").glob("offline-run-*/run-*.wandb"))
