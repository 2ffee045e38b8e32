"""Sending one order safely: intent first, lookup before any resend.

Every order carries a ``client_order_id`` derived from its decision, is written
to the store *before* it is sent, and is looked up at the broker by that id
before any (re)send. A crash or a timeout between "sent" and "recorded" is
therefore recovered by lookup, never by sending the order twice.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

import structlog
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from rebalancerd.domain.model import OrderStatus, OrderType, Side
from rebalancerd.errors import BrokerRejection, NotFound, TransientBrokerError
from rebalancerd.ports import Broker, BrokerOrder, Clock, OrderRecord, OrderRequest, Store

log = structlog.get_logger(__name__)


OWN_PREFIX = "rbd-"
#: Order statuses (as stored) after which the broker will not change an order again.
FINAL_ORDER_STATUSES = frozenset({"filled", "canceled", "rejected", "expired"})


def client_order_id(decision_uid: str, purpose: str = "x", attempt: int = 1) -> str:
    """Deterministic broker id of a decision's order ("x" exit/entry, "s" its stop)."""
    return f"{OWN_PREFIX}{decision_uid}-{purpose}{attempt}"


def request_of(order: BrokerOrder) -> OrderRequest:
    """The request that would have produced ``order`` (to record a recovered order)."""
    return OrderRequest(
        symbol=order.symbol,
        qty=order.qty,
        side=order.side,
        client_order_id=order.client_order_id,
        type=order.type,
        time_in_force=order.time_in_force,
        stop_price=order.stop_price,
    )


def request_from_record(record: OrderRecord) -> OrderRequest:
    """A recorded intent as a request, to send exactly what was meant."""
    return OrderRequest(
        symbol=record.symbol,
        qty=record.qty,
        side=record.side,
        client_order_id=record.client_order_id,
        type=record.type,
        time_in_force="gtc" if record.type is OrderType.STOP else "day",
        stop_price=record.stop_price,
    )


def stop_request(
    symbol: str, qty: Decimal, side: Side, client_id: str, stop_price: Decimal
) -> OrderRequest:
    """A protective GTC stop order."""
    return OrderRequest(
        symbol=symbol,
        qty=qty,
        side=side,
        client_order_id=client_id,
        type=OrderType.STOP,
        time_in_force="gtc",
        stop_price=stop_price,
    )


@dataclass(frozen=True)
class SendResult:
    order: BrokerOrder | None
    rejection: str | None = None

    @property
    def accepted(self) -> bool:
        return self.order is not None


class OrderSender:
    """Submits orders with lookup-before-resend and bounded, backed-off retries."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        attempts: int = 4,
        fill_timeout: float = 30.0,
        poll_interval: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.store, self.clock = store, clock
        self.attempts, self.fill_timeout, self.poll_interval = attempts, fill_timeout, poll_interval
        self.sleep = sleep

    def send(self, broker: Broker, decision_id: int | None, request: OrderRequest) -> SendResult:
        """Record the intent, then submit; a rejection is returned, not raised."""
        existing = broker.get_order_by_client_id(request.client_order_id)
        if existing is not None:
            log.warning("order_recovered", client_order_id=request.client_order_id)
            self._record_intent(decision_id, request)
            self._update(existing)
            return SendResult(existing)
        self._record_intent(decision_id, request)
        try:
            order = self._submit_with_retries(broker, request)
        except BrokerRejection as exc:
            self.store.update_order(
                request.client_order_id, status="rejected", at=self.clock.now(), error=str(exc)
            )
            log.warning(
                "order_rejected",
                client_order_id=request.client_order_id,
                symbol=request.symbol,
                error=str(exc),
                code=exc.code,
            )
            return SendResult(None, str(exc))
        self._update(order)
        log.info(
            "order_submitted",
            client_order_id=order.client_order_id,
            broker_order_id=order.id,
            symbol=order.symbol,
            side=order.side.value,
            type=order.type.value,
            qty=str(order.qty),
            status=order.status.value,
        )
        return SendResult(order)

    def recover(
        self, broker: Broker, decision_id: int | None, client_id: str
    ) -> BrokerOrder | None:
        """The order already at the broker under ``client_id`` (recorded here), or None.

        This is how an interrupted execution resumes: what the broker holds
        wins, and nothing is sent.
        """
        found = broker.get_order_by_client_id(client_id)
        if found is not None:
            log.warning(
                "order_recovered",
                client_order_id=client_id,
                broker_order_id=found.id,
                status=found.status.value,
            )
            self._record_intent(decision_id, request_of(found))
            self._update(found)
        return found

    def _record_intent(self, decision_id: int | None, request: OrderRequest) -> None:
        known = (
            {o.client_order_id for o in self.store.orders_for_decision(decision_id)}
            if (decision_id is not None)
            else set()
        )
        if request.client_order_id not in known:
            self.store.record_order(decision_id, request, at=self.clock.now())

    def _submit_with_retries(self, broker: Broker, request: OrderRequest) -> BrokerOrder:
        retrying = Retrying(
            retry=retry_if_exception_type(TransientBrokerError),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=0.5, max=8),
            sleep=self.sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    found = broker.get_order_by_client_id(request.client_order_id)
                    if found is not None:
                        return found
                return broker.submit_order(request)
        raise AssertionError("unreachable")  # pragma: no cover

    def _update(self, order: BrokerOrder) -> None:
        self.store.update_order(
            order.client_order_id,
            status=order.status.value,
            at=self.clock.now(),
            broker_order=order,
        )

    def await_final(self, broker: Broker, order: BrokerOrder) -> BrokerOrder:
        """Poll until the order is final or the bounded wait runs out."""
        waited = 0.0
        while not order.status.is_final and waited < self.fill_timeout:
            self.sleep(self.poll_interval)
            waited += self.poll_interval
            order = broker.get_order(order.id)
        self._update(order)
        return order

    def cancel_and_confirm(self, broker: Broker, order: BrokerOrder) -> bool:
        """Cancel an order and wait until the broker says it is really cancelled."""
        try:
            broker.cancel_order(order.id)
        except BrokerRejection as exc:
            log.warning("order_cancel_refused", broker_order_id=order.id, error=str(exc))
        current = broker.get_order(order.id)
        waited = 0.0
        while current.status is not OrderStatus.CANCELED and waited < self.fill_timeout:
            if current.status.is_final:
                break
            self.sleep(self.poll_interval)
            waited += self.poll_interval
            current = broker.get_order(order.id)
        ok = current.status is OrderStatus.CANCELED
        if current.client_order_id.startswith(OWN_PREFIX):
            self._update_if_known(current)
        log.info(
            "stop_order_cancelled" if ok else "stop_order_cancel_unconfirmed",
            broker_order_id=order.id,
            symbol=order.symbol,
            status=current.status.value,
        )
        return ok

    def _update_if_known(self, order: BrokerOrder) -> None:
        with contextlib.suppress(NotFound):  # ours by its prefix, but another database's
            self._update(order)

    def place_stop(
        self,
        broker: Broker,
        decision_id: int,
        decision_uid: str,
        symbol: str,
        qty: Decimal,
        side: Side,
        price: Decimal | None,
    ) -> bool:
        """A GTC stop for the whole shares of ``qty`` (Alpaca takes no fractional stops)."""
        whole = qty.to_integral_value(rounding=ROUND_FLOOR)
        if price is None or whole < 1:
            log.warning(
                "stop_order_not_placed", decision_id=decision_id, symbol=symbol, qty=str(qty)
            )
            return False
        cid = self.next_stop_id(decision_id, decision_uid)
        result = self.send(broker, decision_id, stop_request(symbol, whole, side, cid, price))
        log.info(
            "stop_order_placed" if result.accepted else "stop_order_failed",
            decision_id=decision_id,
            symbol=symbol,
            qty=str(whole),
            stop_price=str(price),
            error=result.rejection,
        )
        return result.accepted

    def next_stop_id(self, decision_id: int, decision_uid: str) -> str:
        """The client id of a decision's next protective stop.

        The last recorded stop's id is reused while that stop may still be
        live or was never sent (the send looks it up first, so nothing is
        doubled); once it is final at the broker a fresh attempt number is used,
        since a broker id can name only one order.
        """
        stops = [o for o in self.store.orders_for_decision(decision_id) if o.type is OrderType.STOP]
        if not stops:
            return client_order_id(decision_uid, "s", 1)
        if stops[-1].status in FINAL_ORDER_STATUSES:
            return client_order_id(decision_uid, "s", len(stops) + 1)
        return stops[-1].client_order_id


def protective_stop_price(
    cancelled: list[BrokerOrder], side: Side, avg_entry: Decimal, stop_loss_pct: Decimal | None
) -> Decimal | None:
    """Where a position's stop goes: the cancelled stop's price (the tightest one),
    else ``stop_loss_pct`` below the entry (above it for a short); None: no stop."""
    prices = [s.stop_price for s in cancelled if s.stop_price is not None]
    if prices:
        return max(prices) if side is Side.SELL else min(prices)
    if stop_loss_pct is None:
        return None
    factor = 1 - stop_loss_pct / 100 if side is Side.SELL else 1 + stop_loss_pct / 100
    return (avg_entry * factor).quantize(Decimal("0.01"))
