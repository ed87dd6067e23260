"""The benchmarks still run against the current code (quick CPU runs; the timings themselves are not judged)."""

import json

import pytest

from benchmarks import bench_train, gpu_floor


def test_bench_train_quick_digits_with_a_variant(tmp_path, capsys):
    out = tmp_path / "train.json"
    bench_train.main(
        [
            "--quick",
            "--cases",
            "digits",
            "--threads",
            "1",
            "--out",
            str(out),
            "--variants",
            "narrow=backbone.hidden=[32];broken=trainer.nonexistent=1",
        ]
    )
    r = json.loads(out.read_text())["results"][0]
    p, q = r["project"], r["reference"]
    assert r["case"] == "digits" and p["steps"] == q["steps"] > 0

    # the timed window holds exactly `steps` batches of the 1293 training digits: per epoch 10 of 128
    # and a last one of 13, in both loops (the project counts batches from 1, the reference from 0)
    def batch(b):
        return 1293 - 10 * r["batch_size"] if b % 11 == 0 else r["batch_size"]

    assert r["batch_size"] == 128
    assert p["images"] == sum(batch(b) for b in range(p["warmup_steps"] + 1, p["warmup_steps"] + p["steps"] + 1))
    assert q["images"] == sum(batch(i + 1) for i in range(q["warmup_steps"], q["warmup_steps"] + q["steps"]))
    assert p["images_per_s"] > 0 and q["images_per_s"] > 0
    assert r["ratio"] == p["images_per_s"] / q["images_per_s"]
    assert p["precision"] == "32-true" and not p["cuda_graphs"] and not p["cudnn_benchmark"]
    narrow, broken = r["variants"]
    assert narrow["name"] == "narrow" and narrow["images_per_s"] > 0 and narrow["overrides"] == ["backbone.hidden=[32]"]
    assert "nonexistent" in broken["error"]  # reported, and the other numbers still came
    printed = capsys.readouterr().out
    assert "variant narrow" in printed and "variant broken" in printed and "FAILED" in printed


def test_gpu_floor_runs_on_cpu(tmp_path):
    out = tmp_path / "floor.json"
    gpu_floor.main(["--device", "cpu", "--width", "4", "--batch", "16", "--steps", "2", "--out", str(out)])
    r = json.loads(out.read_text())["env"]
    assert r["launch_us"] > 0 and r["matmul_tflops"] > 0 and r["eager_step_s"] > 0
    assert "graph_step_s" not in r and "eager_error" not in r


@pytest.mark.slow  # 38 s of the default suite's 12 min; the GPU packing tool itself runs only in benchmarks/gpu.sh
def test_gpu_pack_measures_levels_with_workers_on_cpu(tmp_path):
    """Two CPU worker processes warm up once, then train in one shared window per level: every level
    reports one rate per job, the aggregate is their sum, and the GPU-hours follow from it."""
    from benchmarks import gpu_pack

    out = tmp_path / "pack.json"
    gpu_pack.main(
        ["--device", "cpu", "--jobs", "1,2", "--seconds", "1.5", "--width", "4", "--images", "600", "--out", str(out)]
    )
    r = json.loads(out.read_text())
    (run,) = r["runs"]
    assert "error" not in run and [lvl["jobs"] for lvl in run["levels"]] == [1, 2]
    for lvl in run["levels"]:
        assert len(lvl["per_job_images_per_s"]) == lvl["jobs"] and min(lvl["per_job_images_per_s"]) > 0
        assert lvl["aggregate_images_per_s"] == sum(lvl["per_job_images_per_s"])
        assert lvl["table_gpu_hours"] == 72_000 * 45_000 / lvl["aggregate_images_per_s"] / 3600
    assert r["best"]["aggregate_images_per_s"] == max(lvl["aggregate_images_per_s"] for lvl in run["levels"])


def test_gpu_pack_takes_the_fastest_bench_train_setting(tmp_path):
    from benchmarks.gpu_pack import best_overrides

    f = tmp_path / "bench.json"
    f.write_text(
        json.dumps(
            {
                "results": [
                    {
                        "project": {"images_per_s": 100.0},
                        "variants": [
                            {"name": "a", "overrides": ["x=1"], "images_per_s": 150.0},
                            {"name": "broken", "overrides": ["y=2"], "error": "RuntimeError()"},
                            {"name": "b", "overrides": ["z=3"], "images_per_s": 120.0},
                        ],
                    }
                ]
            }
        )
    )
    assert best_overrides(str(f)) == ("a", ["x=1"])
    f.write_text(
        json.dumps(
            {
                "results": [
                    {
                        "project": {"images_per_s": 200.0},
                        "variants": [{"name": "a", "overrides": ["x=1"], "images_per_s": 150.0}],
                    }
                ]
            }
        )
    )
    assert best_overrides(str(f)) == ("default", [])
