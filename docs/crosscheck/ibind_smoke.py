#!/usr/bin/env python3
"""A third-party CP Web API client against the simulator.

ibind (https://pypi.org/project/ibind/, tested with 0.2.2) talks to
`ibflow sim-gateway` exactly as it talks to a real CP Gateway: REST calls for
session, accounts, contracts, market data, history, orders and portfolio, and
its websocket client for `smd` and the `sbd` price ladder. Not part of CI
(it needs Python and ibind); run it by hand after changing the simulator:

    pip install ibind==0.2.2
    cargo build
    python3 docs/crosscheck/ibind_smoke.py [path/to/ibflow]

Exit status 0 and "ibind smoke: OK" when every check passed.
"""

import logging
import subprocess
import sys
import time

from ibind import IbkrClient, IbkrWsClient, OrderRequest, QueueSink, QuestionType
from ibind.ibkr_ws import ibkr_events as events
from ibind.ibkr_ws.ibkr_subscriptions import MarketDataSubscription, PriceLadderSubscription

PORT = 5097
BASE = f"http://127.0.0.1:{PORT}/v1/api/"
AAPL = "265598"
HORC_YES = "762089343"


def data(result):
    return result.data if hasattr(result, "data") else result


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else "target/debug/ibflow"
    sim = subprocess.Popen(
        [exe, "sim-gateway", "--port", str(PORT), "--speed", "86400", "--no-pacing"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2)
        run_checks()
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    print("ibind smoke: OK")


def run_checks():
    logging.basicConfig(level=logging.ERROR)
    c = IbkrClient(url=BASE, cacert=False, auto_register_shutdown=False)
    assert data(c.tickle())["session"], "tickle has a session"
    assert c.check_health(), "healthy"
    acct = data(c.portfolio_accounts())[0]["id"]
    assert any(str(r["conid"]) == AAPL for r in data(c.search_contract_by_symbol("AAPL")))
    assert data(c.security_stocks_by_symbol("AAPL"))["AAPL"][0]["contracts"][0]["conid"] == int(AAPL)
    assert data(c.trading_schedule_by_symbol("STK", "AAPL"))[0]["schedules"]
    c.live_marketdata_snapshot([AAPL], ["31", "84", "86"])  # pre-flight
    time.sleep(0.5)
    snap = data(c.live_marketdata_snapshot([AAPL], ["31", "84", "86"]))[0]
    assert "31" in snap, snap
    assert data(c.marketdata_history_by_conid(AAPL, bar="1d", period="1w"))["data"]

    answers = {QuestionType.PRICE_PERCENTAGE_CONSTRAINT: True, QuestionType.ORDER_VALUE_LIMIT: True}
    buy = OrderRequest(conid=AAPL, side="BUY", quantity=1, order_type="MKT", acct_id=acct, coid="ibind-1")
    placed = data(c.place_order(buy, answers, acct))
    assert placed["order_status"] in ("Submitted", "PreSubmitted", "Filled"), placed
    time.sleep(3)  # three replay days: the order fills
    trades = data(c.trades(days=7))  # ibind asks for iserver/account/trades/ (trailing slash)
    assert any(t["conid"] == int(AAPL) for t in trades), trades
    assert any(p["conid"] == int(AAPL) for p in data(c.positions(acct)))

    # ForecastEx: discovery through the generic get, a sell refused.
    tree = data(c.get("trsrv/event/category-tree"))
    assert any(m["symbol"] == "HORC" for n in tree.values() for m in n["markets"])
    contracts = data(c.get("trsrv/event/contracts", params={"market": "733131966", "exchange": "FORECASTX"}))
    assert {k["putOrCall"] for k in contracts["contracts"]} == {"C", "P"}
    sell = OrderRequest(conid=HORC_YES, side="SELL", quantity=1, order_type="MKT", acct_id=acct)
    try:
        c.place_order(sell, answers, acct)
        raise AssertionError("a ForecastEx sell was accepted")
    except Exception as e:  # ibind raises on a 200 {"error": ...}
        assert "cannot be sold" in str(e), e

    # Websocket: smd and the sbd price ladder through ibind's own parser.
    sink = QueueSink()
    md, ladder = sink.new_queue_accessor(events.MarketData), sink.new_queue_accessor(events.PriceLadder)
    ws = IbkrWsClient(account_id=acct, url=f"ws://127.0.0.1:{PORT}/v1/api/ws", ibkr_client=c, sink=sink)
    ws.start()
    for _ in range(40):
        if ws.is_ready():
            break
        time.sleep(0.25)
    assert ws.is_ready() and ws.is_authenticated()
    ws.subscribe(MarketDataSubscription(conid=AAPL, fields=("31", "84", "86")))
    ws.subscribe(PriceLadderSubscription(conid=HORC_YES, account_id=acct))
    time.sleep(3)
    quote = md.get(block=False)
    assert quote is not None and "last_price" in quote.data, quote
    rows = ladder.get(block=False)
    assert rows is not None and sum(r["focus"] for r in rows.data) == 1, rows
    ws.shutdown()


if __name__ == "__main__":
    main()
