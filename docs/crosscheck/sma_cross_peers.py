#!/usr/bin/env python3
"""Cross-check ibflow's sma_cross against backtrader and backtesting.py.

Developer check, not part of the build or the test suite (the project is pure
Rust). It reads the bundled sample (data/sample/*.json, both history formats),
runs the same rule in both Python backtesters (market orders filled at the
next bar's open, no commission) and compares the closed trades, entry and
exit time and price, with ibflow's trades.csv.

    pip install backtrader backtesting pandas
    cargo run --release -- backtest --strategy sma_cross --out /tmp/ibf
    python3 docs/crosscheck/sma_cross_peers.py data/sample /tmp/ibf/trades.csv \
        [tests/golden/sma_cross_backtrader.csv]

With a third argument it also writes backtrader's trades there; that file is
the golden file the Rust end-to-end test compares ibflow against.

Rule (identical in all three): on each bar close, with SMAs of the close,
buy SIZE at market when flat and fast crosses above slow (previous fast <=
previous slow, now fast > slow); sell the whole position at market when long
and fast crosses below slow (previous fast >= previous slow, now fast < slow).
"""
import csv
import glob
import json
import os
import re
import sys
from datetime import datetime, timezone
from decimal import Decimal

import pandas as pd

FAST, SLOW, SIZE = 10, 30, 100


def load_bars(sample_dir):
    """conid -> DataFrame indexed by UTC time, de-duplicated and sorted."""
    per = {}
    for path in sorted(glob.glob(os.path.join(sample_dir, "*.json"))):
        conid = int(re.search(r"\d+", os.path.basename(path)).group(0))
        with open(path) as f:
            body = json.load(f)
        for b in body["data"]:
            t = int(b["t"])
            per.setdefault(conid, {}).setdefault(t, b)  # first file wins
    frames = {}
    for conid, bars in per.items():
        rows = [bars[t] for t in sorted(bars)]
        idx = [datetime.fromtimestamp(t / 1000, tz=timezone.utc).replace(tzinfo=None) for t in sorted(bars)]
        frames[conid] = pd.DataFrame(
            {
                "Open": [float(r["o"]) for r in rows],
                "High": [float(r["h"]) for r in rows],
                "Low": [float(r["l"]) for r in rows],
                "Close": [float(r["c"]) for r in rows],
                "Volume": [float(r.get("v", 0)) for r in rows],
            },
            index=pd.DatetimeIndex(idx),
        )
    return frames


def crosses(fast_prev, slow_prev, fast, slow):
    up = fast_prev <= slow_prev and fast > slow
    down = fast_prev >= slow_prev and fast < slow
    return up, down


def run_backtrader(df):
    import backtrader as bt

    class SmaCross(bt.Strategy):
        def __init__(self):
            self.fast = bt.ind.SMA(self.data.close, period=FAST)
            self.slow = bt.ind.SMA(self.data.close, period=SLOW)
            self.trades_out = []

        def next(self):
            if len(self) < SLOW + 1:
                return
            up, down = crosses(self.fast[-1], self.slow[-1], self.fast[0], self.slow[0])
            if up and not self.position:
                self.buy(size=SIZE)
            elif down and self.position.size > 0:
                self.sell(size=self.position.size)

        def notify_trade(self, trade):
            if trade.isclosed:
                self.trades_out.append(trade)

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(10_000_000.0)
    cerebro.adddata(bt.feeds.PandasData(dataname=df.rename(columns=str.lower)))
    cerebro.addstrategy(SmaCross)
    strat = cerebro.run()[0]
    out = []
    for tr in strat.trades_out:
        hist = tr.history if tr.history else None
        entry_dt = bt.num2date(tr.dtopen)
        exit_dt = bt.num2date(tr.dtclose)
        exit_price = tr.price + tr.pnl / SIZE  # long trades only
        out.append((entry_dt, exit_dt, round(tr.price, 4), round(exit_price, 4)))
        del hist
    return out


def run_backtesting_py(df):
    from backtesting import Backtest, Strategy

    def sma(values, n):
        return pd.Series(values).rolling(n).mean().to_numpy()

    class SmaCross(Strategy):
        def init(self):
            self.fast = self.I(sma, self.data.Close, FAST)
            self.slow = self.I(sma, self.data.Close, SLOW)

        def next(self):
            if len(self.data) < SLOW + 1:
                return
            up, down = crosses(self.fast[-2], self.slow[-2], self.fast[-1], self.slow[-1])
            if up and not self.position:
                self.buy(size=SIZE)
            elif down and self.position.size > 0:
                self.position.close()

    bt = Backtest(df, SmaCross, cash=10_000_000, commission=0, trade_on_close=False, finalize_trades=False)
    stats = bt.run()
    out = []
    for _, r in stats["_trades"].iterrows():
        out.append((r["EntryTime"].to_pydatetime(), r["ExitTime"].to_pydatetime(), round(r["EntryPrice"], 4), round(r["ExitPrice"], 4)))
    return out


def load_ibflow(path):
    per = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            entry = datetime.fromisoformat(row["entry_time"].replace("Z", "+00:00")).replace(tzinfo=None)
            exit_ = datetime.fromisoformat(row["exit_time"].replace("Z", "+00:00")).replace(tzinfo=None)
            per.setdefault(int(row["conid"]), []).append(
                (entry, exit_, round(float(Decimal(row["entry_price"])), 4), round(float(Decimal(row["exit_price"])), 4))
            )
    return per


def main():
    sample_dir, trades_csv = sys.argv[1], sys.argv[2]
    frames = load_bars(sample_dir)
    ours = load_ibflow(trades_csv)
    ok = True
    golden = []
    for conid, df in sorted(frames.items()):
        mine = ours.get(conid, [])
        for name, fn in (("backtrader", run_backtrader), ("backtesting.py", run_backtesting_py)):
            theirs = fn(df)
            if name == "backtrader":
                golden.extend((conid,) + t for t in theirs)
            same = theirs == mine
            ok &= same
            print(f"conid {conid}: {len(df)} bars; ibflow {len(mine)} trades, {name} {len(theirs)} trades: {'IDENTICAL' if same else 'DIFFERENT'}")
            if not same:
                for a, b in zip(mine, theirs):
                    if a != b:
                        print("  first difference: ibflow", a, f"{name}", b)
                        break
    if len(sys.argv) > 3:
        golden.sort(key=lambda r: (r[1], r[0]))
        with open(sys.argv[3], "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["conid", "entry_time", "exit_time", "entry_price", "exit_price"])
            for conid, entry, exit_, ep, xp in golden:
                iso = lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")
                w.writerow([conid, iso(entry), iso(exit_), f"{ep:g}", f"{xp:g}"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
