"""benchmarks/pool_speed.py: pooling the repetitions of several speed reports."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks.pool_speed import main, summarise  # noqa: E402


def report(skae, hand, gather, raw, encode, commit):
    """A speed.json with one training case, its interleaved epochs and one encoding row."""
    def training(contender, times, target=None):
        return {"case": "fashion_mlp_b128", "contender": contender, "n_threads": 2,
                "target": target, "repeats_epoch_wall_s": times}

    return {
        "environment": {"command": "python benchmarks/bench_speed.py", "git_commit": commit},
        "training": [training("hand", hand), training("hand gather", gather),
                     training("skae", skae, target=1.05)],
        "interleaved": [{"case": "fashion_mlp_b128", "n_threads": 2, "target": 1.05,
                         "repeats_epoch_wall_s": {"skae": skae, "hand": hand,
                                                  "hand gather": gather}}],
        "encoding": [{"contender": "raw torch float32", "n_threads": 2, "target": None,
                      "reference": "raw torch float32", "repeats_s": raw},
                     {"contender": "skae float32", "n_threads": 2, "target": 1.05,
                      "reference": "raw torch float32", "repeats_s": encode}],
    }


def test_pooled_ratios_against_the_loop_faster_over_all_runs():
    # Run 1 (3 repetitions): the slicing loop is the faster (skae / hand
    # 1.06, / gather 1.00); run 2 (5 repetitions): gather is (1.04 against
    # 1.00). Over both, gather is the faster loop, which run 1 alone would
    # not say.
    first = report(skae=[1.0] * 3, hand=[1.0 / 1.06] * 3, gather=[1.0] * 3,
                   raw=[1.0] * 3, encode=[1.02] * 3, commit="a" * 40)
    second = report(skae=[1.0] * 5, hand=[1.0] * 5, gather=[1.0 / 1.04] * 5,
                    raw=[2.0] * 5, encode=[2.2] * 5, commit="b" * 40)
    rows = {(row["kind"], row["contender"]): row for row in summarise([first, second])}
    epoch = rows[("epoch", "skae")]
    assert (epoch["n_runs"], epoch["n_ratios"]) == (2, 8)
    assert epoch["reference"] == "hand gather"
    np.testing.assert_allclose(epoch["estimates"]["hand gather"][0], 1.04)
    np.testing.assert_allclose(epoch["estimates"]["hand"][0], 1.0)
    assert epoch["meets_target"]
    assert rows[("epoch, interleaved", "skae")]["n_ratios"] == 8
    encode = rows[("transform", "skae float32")]
    assert encode["reference"] == "raw torch"
    np.testing.assert_allclose(encode["ratio"], 1.1)  # 3 ratios of 1.02, 5 of 1.10
    assert not encode["meets_target"]
    low, high = encode["estimates"]["raw torch"][1:]
    assert low <= encode["ratio"] <= high


def test_command_line_writes_the_table(tmp_path):
    paths = []
    for i, factor in enumerate((1.0, 1.2)):
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps(report(
            skae=[factor] * 4, hand=[1.0] * 4, gather=[1.1] * 4, raw=[1.0] * 4,
            encode=[1.0] * 4, commit=str(i) * 40)))
        paths.append(str(path))
    out = tmp_path / "pooled.md"
    main([*paths, "--out", str(out)])
    text = out.read_text()
    assert "| epoch: fashion_mlp_b128 (skae) | 2 | 2 | 8 |" in text
    assert "1.100 (`hand`) | 1.05 | NO |" in text
    assert "at 0000000" in text and "at 1111111" in text
    with pytest.raises(SystemExit):
        main([])
