"""`/metrics`: the manager's numbers in Prometheus text format, read from the queue store (and call records)
at each scrape by a custom collector on the console's own registry."""
from __future__ import annotations

import logging
from typing import Callable, Iterable, Iterator, Mapping, Optional

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from ivr.console.keys import METRICS
from ivr.console.offload import offload
from ivr.console.view import agent_counts

log = logging.getLogger(__name__)

# Seconds a caller waited before an agent took them; a call centre's service level reads off these.
WAIT_BUCKETS = (10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


def queue_metrics(figures: Mapping, agents_by_state: Mapping[str, int]) -> Iterator[Metric]:
    """The queue store's `metrics()` and the agents' states as Prometheus metric families."""
    yield GaugeMetricFamily("ivr_queue_waiting", "Callers on hold waiting for an agent.", value=figures["waiting"])
    yield GaugeMetricFamily("ivr_queue_callbacks_pending", "Callers waiting to be called back.",
                            value=figures["callbacks_pending"])
    yield GaugeMetricFamily("ivr_queue_longest_wait_seconds", "How long the longest-waiting caller on hold has waited.",
                            value=figures["longest_wait_s"])
    yield answered_waits(figures["wait_seconds"])
    yield CounterMetricFamily("ivr_queue_taken", "Callers an agent took.", value=figures["taken_total"])
    yield CounterMetricFamily("ivr_queue_abandoned", "Callers who hung up while on hold.",
                              value=figures["abandoned_total"])
    reasons = CounterMetricFamily("ivr_escalations", "Callers handed to the queue, by why the bot handed them over.",
                                  labels=["reason"])
    for reason, count in sorted(figures["escalations_by_reason"].items()):
        reasons.add_metric([reason], count)
    yield reasons
    agents = GaugeMetricFamily("ivr_agents", "Agents by state.", labels=["state"])
    for state, count in agents_by_state.items():
        agents.add_metric([state], count)
    yield agents


def answered_waits(waits: Iterable[float]) -> HistogramMetricFamily:
    waits = list(waits)
    buckets = [(f"{bound:g}", sum(wait <= bound for wait in waits)) for bound in WAIT_BUCKETS]
    buckets.append(("+Inf", len(waits)))
    return HistogramMetricFamily("ivr_queue_answered_wait_seconds", "How long answered callers waited for an agent.",
                                 buckets=buckets, sum_value=sum(waits))


def containment_metrics(counts: Mapping[str, int]) -> Iterator[Metric]:
    """Calls finished, by outcome, and the share contained (finished without an agent): from the call records'
    counts() (calls, contained, and one count per outcome)."""
    calls = CounterMetricFamily("ivr_calls", "Calls finished, by outcome.", labels=["outcome"])
    for outcome, count in sorted(counts.items()):
        if outcome not in ("calls", "contained"):
            calls.add_metric([outcome], count)
    yield calls
    yield CounterMetricFamily("ivr_calls_contained", "Calls finished without being handed to an agent.",
                              value=counts.get("contained", 0))
    total = counts.get("calls", 0)
    yield GaugeMetricFamily("ivr_containment_ratio", "Share of finished calls the bot handled without an agent "
                                                     "(0 to 1; 0 before any call).",
                            value=counts.get("contained", 0) / total if total else 0.0)


class ConsoleCollector:
    """Reads the stores at each scrape (blocking: the scrape runs on a worker thread)."""

    def __init__(self, store, call_counts: Optional[Callable[[], Mapping[str, int]]] = None):
        self._store, self._call_counts = store, call_counts

    def collect(self) -> Iterator[Metric]:
        yield from queue_metrics(self._store.metrics(), agent_counts(self._store.agents()))
        if self._call_counts is not None:
            try:
                counts = self._call_counts()
            except Exception as error:  # noqa: BLE001 - the queue's figures still go out when the records are down
                log.warning("metrics: call records unavailable: %s", error)
                return
            yield from containment_metrics(counts)


def registry(store, call_counts: Optional[Callable[[], Mapping[str, int]]] = None) -> CollectorRegistry:
    own = CollectorRegistry(auto_describe=False)
    own.register(ConsoleCollector(store, call_counts))
    return own


async def metrics(request: web.Request) -> web.Response:
    encode, content_type = choose_encoder(request.headers.get("Accept"))  # the format the scraper asked for
    body = await offload(encode, request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": content_type})
