"""Prometheus alert rules from the targets file, and the Prometheus and Alertmanager configuration around them.

Why Prometheus rules and not Grafana-managed alerts: the workers already export every indicator value and the
target the agents judged it against (``streams/metrics.py``), Prometheus 2.42 and Alertmanager 0.25 run on this
machine (so the rules are tested end to end here), and routing to the on-call lead belongs to Alertmanager.

The rules mirror the agents (``streams/alerts.py``) exactly:

- **fire** when the value is beyond the target (``value OP target`` fails: amber or red), in the alerting windows
  (``live``, ``today``, ``last_60m``, ``mtd``) and only where the agents say a target applies (the
  ``scc_indicator_target`` series exists: it is absent for status ``none``, e.g. before ``effective_from``);
- **stay firing** until the value is back past the target by ``alert_margin`` — hysteresis expressed in PromQL by
  joining with the rule's own ``ALERTS{alertstate="firing"}`` series from the previous evaluation. ``keep_firing_for``
  (also in 2.42) holds an alert for a *time*, not until a *value* is reached, so it cannot express the margin.

Numbers are written into the rules for the financial year generated (a second rule warns when the agents' target
differs, i.e. the rules are due to be regenerated), so the rules file reads as the targets file does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grafana.boards import ALERT_NAME
from grafana.targets import YearTargets
from schemas.config import Target
from streams.alerts import ALERTING_WINDOWS
from streams.metrics import INDICATOR_LABELS

DRIFT_ALERT = "SccAlertRulesOutOfDate"
ONCALL_TEAM = "scc-oncall"
PLATFORM_TEAM = "platform"
WINDOWS_RE = "|".join(sorted(ALERTING_WINDOWS))
MATCH_ON = ", ".join(INDICATOR_LABELS)
INDICATOR_GROUP = list(INDICATOR_LABELS)

# value OP' bound: when the alert starts (beyond the target) and while it is held (not yet recovered by the margin)
_BEYOND = {">=": "<", ">": "<=", "<=": ">", "<": ">="}


def _num(x: float) -> str:
    """A PromQL/label number: 100 not 100.0; exact decimals otherwise."""
    return f"{x:.12g}"


def _float(x: float) -> str:
    """A Go template float literal (``gt $value 110.0`` must compare float with float)."""
    text = _num(x)
    return text if any(c in text for c in ".e") else text + ".0"


def hold_bound(target: Target) -> float:
    """The value the alert is held beyond until it recovers: target shifted by the margin towards better."""
    return target.value + target.alert_margin if target.higher_is_better else target.value - target.alert_margin


def red_bound(target: Target) -> float:
    """Beyond this the agents' status is red rather than amber."""
    return target.value - target.amber_within if target.higher_is_better else target.value + target.amber_within


def indicator_expr(indicator: str, target: Target) -> str:
    """PromQL for one indicator: beyond the target, or held beyond the recovery bound while already firing."""
    value = f'scc_indicator_value{{indicator="{indicator}", window=~"{WINDOWS_RE}"}}'
    beyond = _BEYOND[target.op]
    firing = f'ALERTS{{alertname="{ALERT_NAME}", alertstate="firing", indicator="{indicator}"}}'
    return (
        "(\n"
        f"  {value} {beyond} {_num(target.value)}\n"
        "  or\n"
        "  (\n"
        f"    {value} {beyond} {_num(hold_bound(target))}\n"
        f"    and on ({MATCH_ON})\n"
        f"    {firing}\n"
        "  )\n"
        ")\n"
        f"and on ({MATCH_ON})\n"
        f'scc_indicator_target{{indicator="{indicator}"}}\n'
    )


def _status_template(target: Target) -> str:
    compare = "lt" if target.higher_is_better else "gt"
    return f"{{{{ if {compare} $value {_float(red_bound(target))} }}}}red{{{{ else }}}}amber{{{{ end }}}}"


def indicator_rule(indicator: str, target: Target, fy: str, hold_for: str | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": ALERT_NAME, "expr": indicator_expr(indicator, target)}
    if hold_for:
        rule["for"] = hold_for
    rule["labels"] = {
        "team": ONCALL_TEAM,
        "severity": "page",
        "op": target.op,
        "threshold": _num(target.value),
        "alert_margin": _num(target.alert_margin),
        "financial_year": fy,
    }
    rule["annotations"] = {
        "summary": (
            "{{ $labels.indicator }} ({{ $labels.window }}) at {{ $labels.scope_type }} {{ $labels.scope_code }} "
            f'is {{{{ printf "%.1f" $value }}}}: target {target.op} {_num(target.value)}'
        ),
        "value": "{{ $value }}",
        "threshold": _num(target.value),
        "status": _status_template(target),
        "resolves_when": f"value {target.op} {_num(hold_bound(target))}",
        "target_source": target.source,
    }
    return rule


def drift_rule(targets: YearTargets) -> dict[str, Any]:
    """Warn the platform team when the agents judge against another target than the rules were generated with."""
    parts = [f'scc_indicator_target{{indicator="{i}"}} != {_num(t.value)}' for i, t in sorted(targets.targets.items())]
    known = "|".join(sorted(targets.targets))
    parts.append(f'scc_indicator_target unless scc_indicator_target{{indicator=~"{known}"}}')
    return {
        "alert": DRIFT_ALERT,
        "expr": "\nor\n".join(parts) + "\n",
        "for": "15m",
        "labels": {"team": PLATFORM_TEAM, "severity": "warning", "financial_year": targets.financial_year},
        "annotations": {
            "summary": (
                "The agents judge {{ $labels.indicator }} against {{ $value }} but the alert rules were generated "
                f"for {targets.financial_year}: run `scc grafana build` and reload Prometheus"
            )
        },
    }


def indicator_rules(
    targets: YearTargets, *, interval: str | None = None, hold_for: str | None = None
) -> dict[str, Any]:
    """The rule file for indicator alerts: one rule per indicator with a target, plus the drift warning."""
    group: dict[str, Any] = {"name": "scc-indicators"}
    if interval:
        group["interval"] = interval
    group["rules"] = [
        indicator_rule(name, target, targets.financial_year, hold_for)
        for name, target in sorted(targets.targets.items())
    ]
    group["rules"].append(drift_rule(targets))
    return {"groups": [group]}


def pipeline_rules(*, interval: str | None = None) -> dict[str, Any]:
    """Health of the pipeline: scrape targets down, stale snapshots, dead letters, consumer lag, slow sink."""
    labels = {"team": PLATFORM_TEAM, "severity": "warning"}

    def rule(name: str, expr: str, hold: str, summary: str) -> dict[str, Any]:
        return {"alert": name, "expr": expr, "for": hold, "labels": labels, "annotations": {"summary": summary}}

    rules = [
        rule(
            "SccMetricsDown",
            'up{job=~"scc-worker|scc-sink"} == 0',
            "2m",
            "{{ $labels.job }} {{ $labels.instance }} is not being scraped",
        ),
        rule(
            "SccSnapshotsStale",
            "scc_last_snapshot_age_seconds > 120",
            "2m",
            "no indicator snapshot for {{ $value | humanizeDuration }}: the boards are not live",
        ),
        rule(
            "SccDeadLetters",
            "sum by (source_topic) (increase(scc_dead_letters_total[15m])) > 0",
            "0m",
            "{{ $value }} inputs from {{ $labels.source_topic }} rejected to scc.deadletter in 15 minutes",
        ),
        rule(
            "SccConsumerLagHigh",
            "sum by (group, topic) (scc_consumer_lag) > 10000",
            "10m",
            "{{ $labels.group }} is {{ $value }} records behind on {{ $labels.topic }}",
        ),
        rule(
            "SccSinkSlow",
            "histogram_quantile(0.9, sum by (le) (rate(scc_sink_batch_seconds_bucket[5m]))) > 5",
            "10m",
            "90% of sink batches take up to {{ $value | humanizeDuration }}",
        ),
    ]
    group: dict[str, Any] = {"name": "scc-pipeline"}
    if interval:
        group["interval"] = interval
    group["rules"] = rules
    return {"groups": [group]}


@dataclass(frozen=True)
class RouteTimings:
    """Alertmanager notification timing: how long to gather a group, between updates, and before repeating."""

    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"


@dataclass(frozen=True)
class Receivers:
    """Where notifications go. Example values; an ICB puts its own in ``deploy/alertmanager`` (secrets by file)."""

    oncall_webhook: str = "http://oncall-webhook.example.nhs.uk/scc/alerts"
    oncall_email: str | None = "scc-oncall@example.nhs.uk"
    platform_webhook: str = "http://platform-webhook.example.nhs.uk/scc/alerts"
    smtp_smarthost: str = "smtp.example.nhs.uk:587"
    smtp_from: str = "scc-alerts@example.nhs.uk"
    smtp_auth_username: str | None = None
    smtp_auth_password_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def alertmanager_config(receivers: Receivers | None = None, timings: RouteTimings | None = None) -> dict[str, Any]:
    """Route indicator alerts to the on-call lead and pipeline alerts to the platform team.

    One group per alert the agents would raise (indicator, window and scope), so each crossing is one page and its
    resolution one notification. A system-wide alert inhibits the same indicator and window at organisation and site
    level: the lead gets one page and the board shows where. Grouping by scope matters for that: Alertmanager sends a
    resolved notification only for a group it has notified before, so a muted organisation alert stays silent when
    it resolves too. Resolved notifications are sent, so the lead knows when to stand down.
    """
    r = receivers or Receivers()
    t = timings or RouteTimings()
    config: dict[str, Any] = {"global": {"resolve_timeout": "5m"}}
    if r.oncall_email:
        smtp: dict[str, Any] = {"smtp_smarthost": r.smtp_smarthost, "smtp_from": r.smtp_from, "smtp_require_tls": True}
        if r.smtp_auth_username:
            smtp["smtp_auth_username"] = r.smtp_auth_username
        if r.smtp_auth_password_file:
            smtp["smtp_auth_password_file"] = r.smtp_auth_password_file
        config["global"].update(smtp)
    config["route"] = {
        "receiver": "scc-oncall-lead",
        "group_by": ["alertname", *INDICATOR_GROUP],
        "group_wait": t.group_wait,
        "group_interval": t.group_interval,
        "repeat_interval": t.repeat_interval,
        "routes": [
            {
                "receiver": "scc-platform",
                "matchers": [f'team="{PLATFORM_TEAM}"'],
                "group_by": ["alertname"],
            },
            {"receiver": "scc-oncall-lead", "matchers": [f'team="{ONCALL_TEAM}"']},
        ],
    }
    config["inhibit_rules"] = [
        {
            "source_matchers": [f'alertname="{ALERT_NAME}"', 'scope_type="system"'],
            "target_matchers": [f'alertname="{ALERT_NAME}"', 'scope_type=~"org|site"'],
            "equal": ["indicator", "window"],
        }
    ]
    oncall: dict[str, Any] = {
        "name": "scc-oncall-lead",
        "webhook_configs": [{"url": r.oncall_webhook, "send_resolved": True}],
    }
    if r.oncall_email:
        oncall["email_configs"] = [
            {
                "to": r.oncall_email,
                "send_resolved": True,
                "headers": {
                    "Subject": "[SCC {{ .Status | toUpper }}] {{ .CommonLabels.indicator }} ({{ .CommonLabels.window }})"
                },
            }
        ]
    config["receivers"] = [
        oncall,
        {"name": "scc-platform", "webhook_configs": [{"url": r.platform_webhook, "send_resolved": True}]},
    ]
    config.update(r.extra)
    return config


@dataclass(frozen=True)
class ScrapeTargets:
    """Where Prometheus finds the workers, the sink and Alertmanager (compose service names by default)."""

    worker_dns: str | None = "worker"
    worker_port: int = 9464
    worker_static: tuple[str, ...] = ()
    sink: tuple[str, ...] = ("sink:9465",)
    alertmanagers: tuple[str, ...] = ("alertmanager:9093",)
    rule_files: tuple[str, ...] = ("/etc/prometheus/rules/*.yml",)
    scrape_interval: str = "15s"
    evaluation_interval: str = "15s"


def prometheus_config(targets: ScrapeTargets | None = None) -> dict[str, Any]:
    """prometheus.yml: scrape the workers (every replica, by DNS) and the sink; evaluate the rules; alert."""
    t = targets or ScrapeTargets()
    worker: dict[str, Any] = {"job_name": "scc-worker"}
    if t.worker_dns:
        worker["dns_sd_configs"] = [{"names": [t.worker_dns], "type": "A", "port": t.worker_port}]
    if t.worker_static:
        worker["static_configs"] = [{"targets": list(t.worker_static)}]
    return {
        "global": {"scrape_interval": t.scrape_interval, "evaluation_interval": t.evaluation_interval},
        "rule_files": list(t.rule_files),
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": list(t.alertmanagers)}]}]},
        "scrape_configs": [
            worker,
            {"job_name": "scc-sink", "static_configs": [{"targets": list(t.sink)}]},
        ],
    }
