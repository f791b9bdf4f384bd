"""Does skae work on a GPU, how close is it to a hand loop there, and does it reach the marks?

In one command of at most 8 minutes on a lent GPU: the tests marked ``gpu``,
skae's epoch against a hand loop of the same model, and the Fashion-MNIST
marks (0.0244 at 2-D, 0.0054 at 64-D). Method and the device set-up:
docs/benchmarks.rst.

Usage: python benchmarks/gpu_check.py --out DIR [--smoke] [--budget-s 420]
[--parts pytest speed fashion_mnist]; ``make gpu-check`` runs it into $OUT.
Exit code 1 when a test failed or a part raised.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    # Run as a plain script from a checkout: import the skae next to it.
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from skorch.callbacks import Callback  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from benchmarks.bench_speed import fresh_copy  # noqa: E402
from benchmarks.environment import describe_environment  # noqa: E402
from benchmarks.goals import FASHION_MARKS  # noqa: E402
from benchmarks.report import markdown_table  # noqa: E402
from skae import AutoencoderTransformer  # noqa: E402
from skae._net import supports_fused  # noqa: E402
from skae.datasets import load_fashion_mnist  # noqa: E402

BATCH_SIZE = 128  # of the speed rows, skae and the hand loops alike
FULL = dict(device="cuda", n_train=None, n_test=None, speed_epochs=4, repeats=2,
            speed_hidden=(128, 64), max_epochs=50, model_params={}, pytest_timeout=240)
SMOKE = dict(device="cpu", n_train=300, n_test=100, speed_epochs=1, repeats=1,
             speed_hidden=(16, 8), max_epochs=1, pytest_timeout=120,
             model_params={"mlp": dict(hidden_layer_sizes=(16,)),
                           "conv": dict(conv_channels=(4, 8))})
# The defaults, as the full profile trains them: tol is relative to the loss,
# so it does not end training early at the 64-D mark's scale.
MARK_PARAMS = dict(random_state=0)
PARTS = ["pytest", "speed", "fashion_mnist"]


def load_data(config):
    """Fashion-MNIST (train and test uint8 images), its source, and digits rows."""
    try:
        X_train, _, X_test, _ = load_fashion_mnist(return_X_y=True)
        source = "Fashion-MNIST"
    except FileNotFoundError:
        if config["device"] != "cpu":
            raise SystemExit("gpu_check: Fashion-MNIST not found; set SKAE_DATA to the "
                             "folder that holds fashion_mnist.npz.") from None
        rng = np.random.default_rng(0)
        X_train, X_test = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
                           for n in (config["n_train"], config["n_test"]))
        source = "random uint8 images (Fashion-MNIST not found)"
    digits = (load_digits().data / 16.0).astype(np.float32)
    return (X_train[:config["n_train"]], X_test[:config["n_test"]], source,
            digits[:config["n_train"]])


def run_tests(out, config):
    """``pytest -m gpu tests/test_gpu.py`` in a subprocess; its exit code and counts."""
    env = dict(os.environ)
    if config["device"] == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the smoke run only shows that they are skipped
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "tests/test_gpu.py", "-rA",
               "-p", "no:cacheprovider", "-o", "junit_family=xunit1",
               f"--junitxml={out / 'pytest_gpu.xml'}"]
    try:
        result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True,
                                timeout=config["pytest_timeout"])
        output, returncode = result.stdout + result.stderr, result.returncode
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"") + (exc.stderr or b"") + b"\ntimed out"
        returncode = "timeout"
    (out / "pytest_gpu.txt").write_bytes(output)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failed, properties = [], {}
    if (out / "pytest_gpu.xml").exists():
        suite = ET.parse(out / "pytest_gpu.xml").getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        counts = {key: int(suite.get(key, 0)) for key in counts}
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(case.get("name"))
            # What the tests record beside their verdict (record_property).
            properties.update({f"{case.get('name')}: {p.get('name')}": p.get("value")
                               for p in case.iter("property")})
    return {"command": " ".join(command[1:]), "returncode": returncode, **counts,
            "passed": counts["tests"] - counts["failures"] - counts["errors"]
            - counts["skipped"], "failed_tests": failed, "properties": properties}


def skae_epochs(X, config, epochs):
    est = AutoencoderTransformer(
        n_components=3, init="random", hidden_layer_sizes=config["speed_hidden"],
        batch_size=BATCH_SIZE, max_iter=epochs, n_iter_no_change=epochs, early_stopping=False,
        device=config["device"], random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X)
    return list(est.net_.history[:, "dur"]), est.net_.module_


def hand_epochs(template, rows, config, epochs, resident):
    """Epoch times of a minimal loop; ``resident``: the data lives on the device."""
    device = config["device"]
    module = fresh_copy(template, seed=0).to(device)
    fused = {"fused": True} if supports_fused(torch.optim.Adam, device) else {}
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, **fused)
    X = torch.from_numpy(rows).to(device if resident else "cpu")
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        shuffled = X[torch.randperm(len(X), device=X.device)]
        total = torch.zeros((), device=device)
        for begin in range(0, len(X), BATCH_SIZE):
            batch = shuffled[begin:begin + BATCH_SIZE].to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = F.mse_loss(module(batch)[0], batch)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(batch)
        float(total)  # one wait for the device per epoch, as skae reads its losses
        times.append(time.perf_counter() - start)
    return times


def steady(times):
    """Median epoch time, the first epoch (warm-up) left out when there are more."""
    return float(np.median(times[1:] if len(times) > 1 else times))


def run_speed(X_train, digits, config):
    rows = X_train.reshape(len(X_train), -1).astype(np.float32) / np.float32(255)
    cases = [("fashion float32", rows, rows), ("fashion uint8", X_train, rows),
             ("digits", digits, digits)]
    epochs, results = config["speed_epochs"], []
    for name, X, float_rows in cases:
        # The module skae builds for these rows, re-initialised for the hand loops.
        template = skae_epochs(float_rows[:256], config, 1)[1]
        times = {"skae": [], "hand": [], "hand host": []}
        for repetition in range(config["repeats"]):
            order = list(times) if repetition % 2 == 0 else list(times)[::-1]
            for contender in order:
                times[contender].append(
                    skae_epochs(X, config, epochs)[0] if contender == "skae" else
                    hand_epochs(template, float_rows, config, epochs,
                                resident=contender == "hand"))
        ratios = [steady(s) / steady(h) for s, h in zip(times["skae"], times["hand"])]
        results.append({
            "row": name, "shape": list(X.shape), "dtype": str(X.dtype), "epochs": epochs,
            **{f"{key.replace(' ', '_')}_epoch_s": float(np.median([steady(t) for t in v]))
               for key, v in times.items()},
            "ratio": float(np.median(ratios)), "ratios": ratios, "times": times})
    return results


class Deadline(Callback):
    """Stop training before an epoch that would end past ``deadline`` (``perf_counter``)."""

    def __init__(self, deadline):
        self.deadline = deadline

    def on_train_begin(self, net, **kwargs):
        self.start_, self.hit_ = time.perf_counter(), False

    def on_epoch_end(self, net, **kwargs):
        now = time.perf_counter()
        if now + (now - self.start_) / len(net.history) > self.deadline:
            self.hit_ = True
            raise KeyboardInterrupt  # how skorch's own callbacks stop training


def run_marks(X_train, X_test, config, deadline):
    results, models = [], [(a, k) for a in ("conv", "mlp") for k in sorted(FASHION_MARKS)]
    for position, (architecture, k) in enumerate(models):
        start = time.perf_counter()
        share = max(0.0, deadline - start) / (len(models) - position)
        est = AutoencoderTransformer(
            k, architecture=architecture, max_iter=config["max_epochs"],
            device=config["device"], callbacks=[("deadline", Deadline(start + share))],
            **MARK_PARAMS, **config["model_params"].get(architecture, {}))
        X = X_train if architecture == "conv" else X_train.reshape(len(X_train), -1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(X)
        seconds = time.perf_counter() - start
        mse = -est.score(X_test if architecture == "conv" else X_test.reshape(len(X_test), -1))
        hit = dict(est.net_.callbacks_)["deadline"].hit_
        results.append({
            "architecture": architecture, "n_components": k, "test_mse": float(mse),
            "mark": FASHION_MARKS[k], "meets_mark": bool(mse <= FASHION_MARKS[k]),
            "epochs": est.n_iter_, "best_epoch": est.best_epoch_,
            "max_epochs": config["max_epochs"], "seconds": seconds, "share_s": share,
            "epoch_s": float(np.median(est.net_.history[:, "dur"])),
            "stopped_by": "budget" if hit else "early stopping"
            if est.n_iter_ < config["max_epochs"] else "max_iter",
            "warnings": sorted({str(w.message) for w in caught})})
    return results


def write_report(report, out):
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))
    lines = ["# skae on a GPU (issue 21)", "", f"Command: `{report['command']}`; mode "
             f"{report['mode']}; data: {report['data']}; {report['total_seconds']:.0f} s "
             "in all."]
    if "pytest" in report:
        tests = report["pytest"]
        lines += ["", "## Tests", "", f"`{tests['command']}`: exit code "
                  f"{tests['returncode']}, {tests['passed']} passed, {tests['failures']} "
                  f"failed, {tests['errors']} errors, {tests['skipped']} skipped (output "
                  "in pytest_gpu.txt, JUnit XML in pytest_gpu.xml)."]
        lines += [f"- failed: {name}" for name in tests["failed_tests"]]
        lines += [f"- {name} = {value}" for name, value in tests["properties"].items()]
    if "speed" in report:
        lines += ["", "## Speed: skae against a hand loop (epoch seconds)", "", markdown_table(
            ["row", "shape", "skae", "hand", "hand host", "ratio skae / hand"],
            [[r["row"], "x".join(map(str, r["shape"])), f"{r['skae_epoch_s']:.3f}",
              f"{r['hand_epoch_s']:.3f}", f"{r['hand_host_epoch_s']:.3f}",
              f"{r['ratio']:.2f}"] for r in report["speed"]])]
    if "fashion_mnist" in report:
        lines += ["", "## Fashion-MNIST marks (test MSE)", "", markdown_table(
            ["architecture", "k", "test MSE", "mark", "met", "epochs", "best epoch", "s",
             "epoch s", "stopped by"],
            [[m["architecture"], str(m["n_components"]), f"{m['test_mse']:.4f}",
              str(m["mark"]), "yes" if m["meets_mark"] else "no", str(m["epochs"]),
              str(m["best_epoch"]), f"{m['seconds']:.0f}", f"{m['epoch_s']:.2f}",
              m["stopped_by"]] for m in report["fashion_mnist"]])]
    for part, error in report["errors"].items():
        lines += ["", f"**{part} failed**:", "", "```", error.strip(), "```"]
    lines += ["", "## Environment", "", markdown_table(
        ["", ""], [[key, str(value)] for key, value in report["environment"].items()])]
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--smoke", action="store_true", help="tiny run on the CPU")
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="seconds for the whole run; the mark models share the rest")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS,
                        help="what to run (e.g. only pytest in a short rerun)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    config = SMOKE if args.smoke else FULL
    if config["device"] == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: CUDA is not available here; use --smoke on a CPU.")
    args.out.mkdir(parents=True, exist_ok=True)
    X_train, X_test, source, digits = load_data(config)
    environment = describe_environment(torch.get_num_threads(), " ".join(sys.argv))
    if torch.cuda.is_available() and config["device"] == "cuda":
        environment.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda,
                           cudnn=torch.backends.cudnn.version(),
                           cudnn_allow_tf32=torch.backends.cudnn.allow_tf32)
    report = {"command": " ".join(["python", *sys.argv]), "mode": "smoke" if args.smoke
              else "full", "data": source, "budget_s": args.budget_s, "errors": {},
              "environment": environment, "total_seconds": 0.0}
    parts = [("pytest", lambda: run_tests(args.out, config)),
             ("speed", lambda: run_speed(X_train, digits, config)),
             ("fashion_mnist", lambda: run_marks(X_train, X_test, config,
                                                 start + args.budget_s))]
    for name, part in parts:
        if name not in args.parts:
            continue
        try:
            report[name] = part()
        except Exception:  # record it, and still run the parts after it
            report["errors"][name] = traceback.format_exc()
        report["total_seconds"] = time.perf_counter() - start
        write_report(report, args.out)  # after each part: a later crash keeps the rest
        print(f"gpu_check: {name} done at {report['total_seconds']:.0f} s", flush=True)
    failed = report["errors"] or report.get("pytest", {}).get("returncode", 0) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
