"""Alert rules generated from the targets: their PromQL per comparison, Prometheus' own checks, and the hysteresis
run through ``promtool test rules`` (the engine Prometheus uses, without starting a server)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from grafana import alerting
from grafana.boards import ALERT_NAME
from grafana.build import ROOT, recorded_year, to_yaml
from grafana.targets import YearTargets, targets_for_year
from schemas.config import Target, load_config

CONFIG = load_config()
TARGETS = targets_for_year(CONFIG, recorded_year() or "2026/27")
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: run scripts/install-monitoring.sh")
needs_amtool = pytest.mark.skipif(AMTOOL is None, reason="amtool missing: run scripts/install-monitoring.sh")


def _run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("op", "fires", "holds"),
    [(">=", "< 78", "< 79"), (">", "<= 78", "<= 79"), ("<=", "> 78", "> 77"), ("<", ">= 78", ">= 77")],
)
def test_expression_fires_beyond_target_and_holds_until_margin(op: str, fires: str, holds: str) -> None:
    expr = alerting.indicator_expr("x", Target(op=op, value=78, amber_within=5, alert_margin=1, source="t"))
    value = 'scc_indicator_value{indicator="x", window=~"last_60m|live|mtd|today"}'
    assert f"{value} {fires}\n" in expr
    assert f"{value} {holds}\n" in expr
    assert f'ALERTS{{alertname="{ALERT_NAME}", alertstate="firing", indicator="x"}}' in expr
    assert expr.rstrip().endswith('scc_indicator_target{indicator="x"}'), "no alert where no target applies"


def test_one_rule_per_target_and_the_year_on_every_rule() -> None:
    rules = alerting.indicator_rules(TARGETS)["groups"][0]["rules"]
    indicator_rules = [r for r in rules if r["alert"] == ALERT_NAME]
    assert len(indicator_rules) == len(TARGETS.targets)
    mofd = next(r for r in indicator_rules if 'indicator="mofd_awaiting_plan"' in r["expr"])
    assert mofd["labels"]["threshold"] == "100" and mofd["labels"]["op"] == "<="
    assert "> 100\n" in mofd["expr"] and "> 95\n" in mofd["expr"], "100 from the LLR file, margin 5"
    assert mofd["annotations"]["threshold"] == "100"
    assert any(r["alert"] == alerting.DRIFT_ALERT for r in rules)


def test_local_target_overrides_national_in_rules() -> None:
    cat2 = TARGETS.get("amb_cat2_p90_min")
    assert cat2 is not None and cat2.value == 30, "LLR's local 30 minutes, not the national 40"


@needs_promtool
def test_committed_prometheus_files_pass_promtool() -> None:
    rules = sorted(str(p) for p in (ROOT / "deploy/prometheus/rules").glob("*.yml"))
    assert len(rules) == 2
    result = _run(str(PROMTOOL), "check", "rules", *rules)
    assert result.returncode == 0, result.stdout + result.stderr
    result = _run(str(PROMTOOL), "check", "config", "--syntax-only", str(ROOT / "deploy/prometheus/prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_amtool
def test_committed_alertmanager_file_passes_amtool_and_routes() -> None:
    config = str(ROOT / "deploy/alertmanager/alertmanager.yml")
    result = _run(str(AMTOOL), "check-config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    for labels, receiver in [
        ([f"alertname={ALERT_NAME}", "team=scc-oncall", "indicator=mofd_awaiting_plan"], "scc-oncall-lead"),
        (["alertname=SccSnapshotsStale", "team=platform"], "scc-platform"),
    ]:
        result = _run(str(AMTOOL), "config", "routes", "test", f"--config.file={config}", *labels)
        assert result.returncode == 0 and result.stdout.strip() == receiver, result.stdout + result.stderr


def test_alertmanager_groups_inhibits_and_resolves() -> None:
    config = alerting.alertmanager_config()
    assert config["route"]["group_by"] == ["alertname", "indicator", "window", "scope_type", "scope_code"]
    inhibit = config["inhibit_rules"][0]
    assert 'scope_type="system"' in inhibit["source_matchers"] and inhibit["equal"] == ["indicator", "window"]
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []) + receiver.get("email_configs", []):
            assert hook["send_resolved"] is True
    assert "email_configs" in config["receivers"][0], "example email receiver for the on-call lead"


# --- hysteresis, evaluated by Prometheus' rule engine (promtool test rules) ------------------------------------


def _labels(indicator: str, target: Target, scope: str = "QK1", scope_type: str = "system") -> dict[str, str]:
    return {
        "alertname": ALERT_NAME,
        "indicator": indicator,
        "window": "live",
        "scope_type": scope_type,
        "scope_code": scope,
        "team": "scc-oncall",
        "severity": "page",
        "op": target.op,
        "threshold": alerting._num(target.value),
        "alert_margin": alerting._num(target.alert_margin),
        "financial_year": TARGETS.financial_year,
    }


def _annotations(
    indicator: str, target: Target, value: float, scope: str = "QK1", scope_type: str = "system"
) -> dict[str, str]:
    status = (
        "red"
        if (value < alerting.red_bound(target) if target.higher_is_better else value > alerting.red_bound(target))
        else "amber"
    )
    return {
        "summary": f"{indicator} (live) at {scope_type} {scope} is {value:.1f}: target {target.op} {alerting._num(target.value)}",
        "value": alerting._num(value),
        "threshold": alerting._num(target.value),
        "status": status,
        "resolves_when": f"value {target.op} {alerting._num(alerting.hold_bound(target))}",
        "target_source": target.source,
    }


def _series(
    indicator: str, values: str, *, scope: str = "QK1", scope_type: str = "system", name: str = "scc_indicator_value"
) -> dict[str, str]:
    labels = f'indicator="{indicator}", window="live", scope_type="{scope_type}", scope_code="{scope}"'
    return {"series": f"{name}{{{labels}}}", "values": values}


def _expect(indicator: str, target: Target, steps: list[float | None], at: list[int]) -> list[dict[str, Any]]:
    out = []
    for minute in at:
        value = steps[minute]
        alerts = []
        if value is not None:
            alerts = [
                {"exp_labels": _labels(indicator, target), "exp_annotations": _annotations(indicator, target, value)}
            ]
        out.append({"eval_time": f"{minute}m", "alertname": ALERT_NAME, "exp_alerts": alerts})
    return out


@needs_promtool
def test_hysteresis_under_prometheus(tmp_path: Path) -> None:
    """MOFD (<= 100, margin 5): fires above 100, holds at 98 and 96, resolves at 95; ED 4h (>= 78, margin 1) alike.
    A value beyond the target where no target applies (no scc_indicator_target series) never fires."""
    mofd, ed = TARGETS.get("mofd_awaiting_plan"), TARGETS.get("ed_4h_pct")
    assert mofd is not None and ed is not None
    mofd_steps = [90, 101, 98, 96, 95, 99, 104]
    mofd_firing = [None, 101, 98, 96, None, None, 104]
    ed_steps = [80, 77.5, 78.5, 78.9, 79, 78.2]
    ed_firing = [None, 77.5, 78.5, 78.9, None, None]
    rules = tmp_path / "rules.yml"
    rules.write_text(
        to_yaml(
            alerting.indicator_rules(
                YearTargets(TARGETS.financial_year, False, {"mofd_awaiting_plan": mofd, "ed_4h_pct": ed})
            ),
            "alerting",
        )
    )
    test = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    _series("mofd_awaiting_plan", " ".join(str(v) for v in mofd_steps)),
                    _series("mofd_awaiting_plan", f"100x{len(mofd_steps)}", name="scc_indicator_target"),
                ],
                "alert_rule_test": _expect("mofd_awaiting_plan", mofd, mofd_firing, list(range(len(mofd_steps)))),
            },
            {
                "interval": "1m",
                "input_series": [
                    _series("ed_4h_pct", " ".join(str(v) for v in ed_steps)),
                    _series("ed_4h_pct", f"78x{len(ed_steps)}", name="scc_indicator_target"),
                ],
                "alert_rule_test": _expect("ed_4h_pct", ed, ed_firing, list(range(len(ed_steps)))),
            },
            {
                "interval": "1m",
                "input_series": [_series("mofd_awaiting_plan", "150 150 150")],
                "alert_rule_test": [{"eval_time": "2m", "alertname": ALERT_NAME, "exp_alerts": []}],
            },
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = _run(str(PROMTOOL), "test", "rules", "test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
