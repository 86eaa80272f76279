//! Operator tools against a CP Gateway (or the simulator): session status,
//! quotes, history download, orders, trades, positions. Each takes
//! `--gateway URL` and `--json`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use cpapi::smd::field;
use cpapi::smd::SmdDecoder;
use engine::model::Conid;
use ibkr::session::ResetRegion;
use ibkr::{ClientConfig, IbkrClient};
use serde_json::json;

/// Flags every gateway command shares.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Base URL of the gateway's API.
    #[arg(
        long,
        env = "IBFLOW_GATEWAY",
        default_value = "https://localhost:5000/v1/api"
    )]
    pub gateway: String,
    /// Accept the gateway's self-signed certificate (loopback hosts only).
    #[arg(long)]
    pub insecure: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// A running bot to ask instead (`--control`, `IBFLOW_CONTROL`,
    /// `--config` with `[run] control`): when one answers there, the query
    /// goes through the bot's paced client, so it cannot put the bot's IP
    /// in the gateway's 429 penalty box.
    #[command(flatten)]
    pub bot: crate::control::client::BotArgs,
    /// Go to the gateway directly even when a bot answers.
    #[arg(long)]
    pub direct: bool,
}

/// `ibflow gateway` commands.
#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Session state: authenticated, connected, competing, and reset times.
    Status(Common),
    /// ForecastEx: the event category tree and the markets on its leaves.
    EventCategories(Common),
    /// ForecastEx: the YES and NO contracts of a market. The `--json` output
    /// is what `ibflow backtest --event-contracts FILE` reads.
    EventContracts(EventContractsArgs),
}

/// Flags of `ibflow gateway event-contracts`.
#[derive(Debug, Args)]
pub struct EventContractsArgs {
    /// Conid of the market (its artificial underlying), from
    /// `gateway event-categories`.
    #[arg(long)]
    pub market: i64,
    /// Exchange of the market's contracts.
    #[arg(long, default_value = "FORECASTX")]
    pub exchange: String,
    /// Gateway URL, TLS and output flags.
    #[command(flatten)]
    pub common: Common,
}

/// Flags of `ibflow quote`.
#[derive(Debug, Args)]
pub struct QuoteArgs {
    /// Contract ids.
    #[arg(required = true)]
    pub conids: Vec<i64>,
    /// Gateway URL, TLS and output flags.
    #[command(flatten)]
    pub common: Common,
}

/// `ibflow history` commands.
#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Download bars from /hmds/history and save the raw responses.
    Fetch(FetchArgs),
}

/// Flags of `ibflow history fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Contract id to download.
    #[arg(long)]
    pub conid: i64,
    /// Bar size: 1min, 5min, 1h, 1d, ...
    #[arg(long, default_value = "1d")]
    pub bar: String,
    /// How far back: 1d, 1w, 1m, 1y, ...
    #[arg(long, default_value = "1y")]
    pub period: String,
    /// Directory for the raw responses (readable by `ibflow backtest --data`).
    #[arg(long)]
    pub out: PathBuf,
    /// End of the range (RFC 3339). Default: now.
    #[arg(long)]
    pub end: Option<String>,
    /// Include bars outside regular trading hours.
    #[arg(long)]
    pub outside_rth: bool,
    /// Gateway URL, TLS and output flags.
    #[command(flatten)]
    pub common: Common,
}

/// Flags of `ibflow orders`.
#[derive(Debug, Args)]
pub struct OrdersArgs {
    /// Status filters, comma separated (filled, submitted, cancelled, ...).
    #[arg(long, value_delimiter = ',')]
    pub filters: Vec<String>,
    /// Ask the gateway for a fresh list.
    #[arg(long)]
    pub force: bool,
    /// Read the orders this engine stored (the `--db` SQLite file) instead
    /// of asking the gateway.
    #[arg(long)]
    pub local: bool,
    /// Gateway URL, TLS and output flags.
    #[command(flatten)]
    pub common: Common,
}

/// Flags of `ibflow trades`.
#[derive(Debug, Args)]
pub struct TradesArgs {
    /// Days of history (1-7). Default: today.
    #[arg(long)]
    pub days: Option<u8>,
    /// Gateway URL, TLS and output flags.
    #[command(flatten)]
    pub common: Common,
}

/// Flags of `ibflow positions`.
#[derive(Debug, Args)]
pub struct PositionsArgs {
    /// Account id. Default: the first of /portfolio/accounts.
    #[arg(long)]
    pub account: Option<String>,
    /// Read the positions this engine stored (the `--db` SQLite file)
    /// instead of asking the gateway.
    #[arg(long)]
    pub local: bool,
    /// Gateway URL, TLS and output flags.
    #[command(flatten)]
    pub common: Common,
}

fn client(c: &Common) -> Result<IbkrClient> {
    if !c.direct {
        if let Some(cfg) = crate::control::client::via_bot(&c.bot)? {
            return Ok(IbkrClient::new(cfg)?);
        }
    }
    let mut cfg = ClientConfig::with_base_url(&c.gateway);
    cfg.accept_invalid_certs = c.insecure;
    // An operator tool must not hang for 15 minutes on a 429.
    cfg.pacing.wait_out_penalty = false;
    Ok(IbkrClient::new(cfg)?)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn print_json(v: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "-".into())
}

/// Run an `ibflow gateway` command and print its answer. A 429 fails at
/// once instead of waiting out the penalty box.
pub fn gateway(cmd: GatewayCommand) -> Result<()> {
    let common = match cmd {
        GatewayCommand::Status(common) => common,
        GatewayCommand::EventCategories(common) => return event_categories(&common),
        GatewayCommand::EventContracts(args) => return event_contracts(&args),
    };
    let c = client(&common)?;
    runtime()?.block_on(async {
        let tickle = c.tickle().await.context("POST /tickle")?;
        let auth = c.auth_status().await.context("POST /iserver/auth/status")?;
        let now = chrono::Utc::now();
        let resets: Vec<(&str, String)> = [
            ("US/Eastern", ResetRegion::NorthAmerica),
            ("CEST", ResetRegion::Europe),
            ("HKT", ResetRegion::Asia),
        ]
        .into_iter()
        .map(|(n, r)| (n, r.next_reset(now).to_rfc3339()))
        .collect();
        let server = auth.server_info.clone().unwrap_or_default();
        if common.json {
            return print_json(&json!({
                "gateway": c.base_url().as_str(),
                "authenticated": auth.authenticated,
                "connected": auth.connected,
                "competing": auth.competing,
                "message": auth.message,
                "sso_expires_ms": tickle.sso_expires_ms,
                "server_name": server.server_name,
                "server_version": server.server_version,
                "next_reset": resets.iter().map(|(n, t)| json!({"zone": n, "utc": t})).collect::<Vec<_>>(),
            }));
        }
        println!("Gateway        {}", c.base_url());
        println!("Authenticated  {}", auth.authenticated);
        println!("Connected      {}", auth.connected);
        println!("Competing      {}", auth.competing);
        if let Some(m) = auth.message.as_ref().filter(|m| !m.is_empty()) {
            println!("Message        {m}");
        }
        println!("SSO expires in {}", tickle.sso_expires_ms.map(|ms| format!("{} s", ms / 1000)).unwrap_or_else(|| "-".into()));
        println!("Server         {} {}", opt(&server.server_name), opt(&server.server_version));
        for (n, t) in &resets {
            println!("Next reset     {t} (00:00 {n})");
        }
        if auth.competing {
            eprintln!("warning: a competing brokerage session holds this username (TWS, Client Portal or mobile)");
        }
        Ok(())
    })
}

fn event_categories(common: &Common) -> Result<()> {
    let c = client(common)?;
    runtime()?.block_on(async {
        let tree = c
            .event_category_tree()
            .await
            .context("GET /trsrv/event/category-tree")?;
        if common.json {
            return print_json(&serde_json::to_value(&tree)?);
        }
        // Full path of every leaf with markets: "Economic Indicators > ...".
        let path = |id: &str| {
            let mut parts = Vec::new();
            let mut at = Some(id.to_owned());
            while let Some(cur) = at.take() {
                let Some(node) = tree.get(&cur) else { break };
                parts.push(node.label.clone().unwrap_or(cur));
                // A cycle in venue data must not hang the tool.
                if parts.len() > 16 {
                    break;
                }
                at = node.parent_id.clone();
            }
            parts.reverse();
            parts.join(" > ")
        };
        println!("{:>12}  {:<8} {:<40} CATEGORY", "MARKET", "SYMBOL", "NAME");
        for (id, node) in &tree {
            for m in &node.markets {
                println!(
                    "{:>12}  {:<8} {:<40} {}",
                    m.conid.0,
                    opt(&m.symbol),
                    opt(&m.name),
                    path(id)
                );
            }
        }
        Ok(())
    })
}

fn event_contracts(args: &EventContractsArgs) -> Result<()> {
    let c = client(&args.common)?;
    runtime()?.block_on(async {
        let body = c
            .event_contracts(Conid(args.market), &args.exchange)
            .await
            .context("GET /trsrv/event/contracts")?;
        if args.common.json {
            return print_json(&serde_json::to_value(&body)?);
        }
        if body.contracts.is_empty() {
            bail!(
                "market {} lists no contracts on {}",
                args.market,
                args.exchange
            );
        }
        println!(
            "{:>12}  {:<4} {:>8}  {:<16} {:<10} DESCRIPTION",
            "CONID", "SIDE", "STRIKE", "LABEL", "EXPIRES"
        );
        for k in &body.contracts {
            let side = match k.put_or_call.as_deref() {
                Some("C") => "YES",
                Some("P") => "NO",
                _ => "?",
            };
            println!(
                "{:>12}  {:<4} {:>8}  {:<16} {:<10} {}",
                k.conid.0,
                side,
                opt(&k.strike),
                opt(&k.strike_label),
                opt(&k.expiration),
                opt(&k.short_description)
            );
        }
        // Unpairable records are worth a word: they cannot be netted.
        match body.pairing() {
            Ok(p) if !p.unpaired.is_empty() => {
                eprintln!("warning: no opposite side listed for {:?}", p.unpaired)
            }
            Ok(_) => {}
            Err(e) => eprintln!("warning: {e}"),
        }
        Ok(())
    })
}

/// Fields asked for by `ibflow quote`.
const QUOTE_FIELDS: &[&str] = &[
    field::LAST,
    field::BID,
    field::ASK,
    field::BID_SIZE,
    field::ASK_SIZE,
    field::LAST_SIZE,
    field::VOLUME,
    field::VOLUME_LONG,
    field::AVAILABILITY,
    field::SYMBOL,
];

/// Run `ibflow quote`: snapshot the quote fields of each conid and print
/// them.
pub fn quote(args: QuoteArgs) -> Result<()> {
    let c = client(&args.common)?;
    let conids: Vec<Conid> = args.conids.iter().copied().map(Conid).collect();
    runtime()?.block_on(async {
        let rows = c
            .snapshot(&conids, QUOTE_FIELDS)
            .await
            .context("GET /iserver/marketdata/snapshot")?;
        let mut d = SmdDecoder::new();
        let mut out = Vec::new();
        for row in &rows {
            match d.decode_value(row) {
                Ok(s) => out.push(s.clone()),
                Err(e) => eprintln!("skipping a snapshot row: {e}"),
            }
        }
        if args.common.json {
            let v: Vec<_> = out
                .iter()
                .map(|s| json!({"quote": s.quote, "last_kind": s.last_kind, "availability": s.availability, "raw": s.raw}))
                .collect();
            return print_json(&serde_json::Value::Array(v));
        }
        println!("{:>10} {:<8} {:>10} {:>10} {:>10} {:>8} {:>8} {:>12} {:<5}", "conid", "symbol", "last", "bid", "ask", "bidsz", "asksz", "volume", "avail");
        for s in &out {
            let q = &s.quote;
            let last = match (q.last, s.last_kind) {
                (Some(p), cpapi::smd::LastKind::PriorClose) => format!("C{p}"),
                (Some(p), cpapi::smd::LastKind::Halted) => format!("H{p}"),
                (Some(p), _) => p.to_string(),
                (None, _) => "-".into(),
            };
            println!(
                "{:>10} {:<8} {:>10} {:>10} {:>10} {:>8} {:>8} {:>12} {:<5}",
                q.conid.0,
                s.raw(field::SYMBOL).unwrap_or("-"),
                last,
                opt(&q.bid),
                opt(&q.ask),
                opt(&q.bid_size),
                opt(&q.ask_size),
                opt(&q.volume),
                s.raw(field::AVAILABILITY).unwrap_or("-"),
            );
        }
        Ok(())
    })
}

/// Run `ibflow history fetch`: download the range, save every raw response
/// into `--out`, print what was fetched.
pub fn history(cmd: HistoryCommand) -> Result<()> {
    let HistoryCommand::Fetch(a) = cmd;
    let c = client(&a.common)?;
    let end = match &a.end {
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .with_context(|| format!("--end {s:?} is not RFC 3339"))?
            .to_utc(),
        None => chrono::Utc::now(),
    };
    runtime()?.block_on(async {
        let d = ibkr::history::download(
            &c,
            Conid(a.conid),
            &a.bar,
            &a.period,
            end,
            a.outside_rth,
            Some(&a.out),
        )
        .await
        .context("downloading history")?;
        let first = d.bars.first().map(|b| b.time.to_rfc3339());
        let last = d.bars.last().map(|b| b.time.to_rfc3339());
        if a.common.json {
            return print_json(&json!({
                "conid": a.conid, "bar": a.bar, "period": a.period,
                "requests": d.requests, "bars": d.bars.len(),
                "first": first, "last": last,
                "files": d.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            }));
        }
        println!(
            "{} bars of {} for conid {} in {} requests ({} .. {}); {} files in {}",
            d.bars.len(),
            a.bar,
            a.conid,
            d.requests,
            opt(&first),
            opt(&last),
            d.files.len(),
            a.out.display()
        );
        Ok(())
    })
}

/// Run `ibflow orders`: the gateway's live orders, or with `--local` the
/// orders stored in the database `db`.
pub fn orders(a: OrdersArgs, db: &std::path::Path) -> Result<()> {
    if a.local {
        return crate::store_cmd::print_orders(db, a.common.json);
    }
    let c = client(&a.common)?;
    let mut filters = Vec::new();
    for f in &a.filters {
        filters
            .push(cpapi::spelling::order_status(f).map_err(|e| anyhow::anyhow!("--filters: {e}"))?);
    }
    runtime()?.block_on(async {
        let o = c
            .live_orders(&filters, a.force)
            .await
            .context("GET /iserver/account/orders")?;
        if a.common.json {
            return print_json(&serde_json::to_value(&o.orders)?);
        }
        println!(
            "{:>12} {:<10} {:>10} {:<8} {:<5} {:<8} {:>8} {:>8} {:>10} {:<14} {:<3}",
            "order_id",
            "account",
            "conid",
            "ticker",
            "side",
            "type",
            "filled",
            "remain",
            "avg",
            "status",
            "ref"
        );
        for x in &o.orders {
            println!(
                "{:>12} {:<10} {:>10} {:<8} {:<5} {:<8} {:>8} {:>8} {:>10} {:<14} {}",
                opt(&x.order_id),
                opt(&x.acct),
                x.conid.0,
                opt(&x.ticker),
                opt(&x.side),
                opt(&x.order_type),
                opt(&x.filled_quantity),
                opt(&x.remaining_quantity),
                opt(&x.avg_price),
                opt(&x.status),
                opt(&x.order_ref),
            );
        }
        Ok(())
    })
}

/// Run `ibflow trades`: the gateway's executions of the last `--days`
/// (1 to 7). Trades that do not convert to executions are skipped with a
/// message on stderr.
pub fn trades(a: TradesArgs) -> Result<()> {
    if let Some(d) = a.days {
        if !(1..=7).contains(&d) {
            bail!("--days must be 1..7, got {d}");
        }
    }
    let c = client(&a.common)?;
    runtime()?.block_on(async {
        let t = c
            .trades(a.days)
            .await
            .context("GET /iserver/account/trades")?;
        let mut execs = Vec::new();
        for x in &t {
            match x.to_execution() {
                Ok(e) => execs.push(e),
                Err(e) => eprintln!("skipping trade {}: {e}", x.execution_id),
            }
        }
        if a.common.json {
            return print_json(&serde_json::to_value(&execs)?);
        }
        println!(
            "{:<26} {:<25} {:<10} {:>10} {:<2} {:>10} {:>10} {:>8} {:<3}",
            "execution_id", "time", "account", "conid", "s", "size", "price", "comm", "ref"
        );
        for e in &execs {
            println!(
                "{:<26} {:<25} {:<10} {:>10} {:<2} {:>10} {:>10} {:>8} {}",
                e.execution_id,
                e.time.to_rfc3339(),
                e.account,
                e.conid.0,
                cpapi::spelling::trade_side(e.side),
                e.size,
                e.price,
                e.commission,
                opt(&e.order_ref),
            );
        }
        Ok(())
    })
}

/// Run `ibflow positions`: the gateway's positions of one account, or with
/// `--local` the positions stored in the database `db`.
pub fn positions(a: PositionsArgs, db: &std::path::Path) -> Result<()> {
    if a.local {
        return crate::store_cmd::print_positions(db, a.common.json);
    }
    let c = client(&a.common)?;
    runtime()?.block_on(async {
        let account = match a.account.clone() {
            Some(acct) => acct,
            None => {
                let accts = c
                    .portfolio_accounts()
                    .await
                    .context("GET /portfolio/accounts")?;
                match accts.first() {
                    Some(x) => x.account_id.clone().unwrap_or_else(|| x.id.clone()),
                    None => bail!("the gateway lists no accounts"),
                }
            }
        };
        let p = c
            .positions(&account)
            .await
            .with_context(|| format!("GET /portfolio/{account}/positions"))?;
        if a.common.json {
            return print_json(&json!({"account": account, "positions": p}));
        }
        println!("Account {account}");
        println!(
            "{:>10} {:<16} {:>10} {:>12} {:>12} {:>12} {:>12}",
            "conid", "contract", "position", "avg_price", "mkt_price", "mkt_value", "unreal_pnl"
        );
        for x in &p {
            println!(
                "{:>10} {:<16} {:>10} {:>12} {:>12} {:>12} {:>12}",
                x.conid.0,
                opt(&x.contract_desc),
                x.position,
                opt(&x.avg_price.or(x.avg_cost)),
                opt(&x.mkt_price),
                opt(&x.mkt_value),
                opt(&x.unrealized_pnl),
            );
        }
        Ok(())
    })
}
